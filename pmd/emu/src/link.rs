//! The protocol between the `mana-emu` daemon and its clients (a driver process, `mana-emu ctl`).
//!
//! Transport: a unix `SOCK_SEQPACKET` socket, one message per packet, file descriptors passed
//! with `SCM_RIGHTS` (see `fdpass`). Messages are single lines of text, easy to read in a
//! trace. Every request starts with an id the client chooses (a decimal number) and the reply
//! repeats it, so a client never takes a late reply to an earlier request for the answer to the
//! current one:
//!
//! | request | fd sent | reply | fd back |
//! |---|---|---|---|
//! | `ID hello` | - | `ID ok proto=1 bar0_len=0x.. vports=N queues=N` | BAR0 |
//! | `ID map iova=0x.. len=0x..` | segment | `ID ok` | - |
//! | `ID unmap iova=0x..` | - | `ID ok` | - |
//! | `ID stats` | - | `ID ok {JSON}` ([`Stats::to_json`](crate::Stats::to_json)) | - |
//! | `ID inject FAULT WORDS` | - | `ID ok` ([`Fault`] words, e.g. `sq-error 30`) | - |
//! | `ID present` | - | `ID ok present=1` or `ID ok present=0` | - |
//!
//! Any failure is `ID err MESSAGE` (`- err ...` when the request had no id); the daemon never
//! stops over a bad request. Numbers are hexadecimal with `0x` or decimal.
//!
//! One device per daemon; any number of clients (up to [`MAX_CLIENTS`]) at once. The device and
//! every DMA mapping outlive the client that made them: a driver process can exit, a new one
//! reconnect, map its segments again (mapping a range that is already mapped from the same file
//! is accepted and keeps the existing mapping, so DMA never sees a gap; the same range from
//! another file replaces it) and carry on.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pmd_mempool::MemSegment;

use crate::device::Device;
use crate::dma::Mapping;
use crate::fault::Fault;
use crate::fdpass;

/// Protocol version `hello` reports.
pub const PROTO_VERSION: u32 = 1;
/// Longest request the daemon accepts.
pub const MAX_REQUEST: usize = 4096;
/// Longest reply a client accepts (the stats of 16 vports are about 6 KiB).
const MAX_REPLY: usize = 64 << 10;
/// Most clients connected at once; more are refused with an error reply.
pub const MAX_CLIENTS: usize = 64;
/// How often the server looks at its stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Requests served from one client per poll round (so one busy client cannot starve others).
const BURST: usize = 16;
/// How long a client waits for a reply by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A mapping made through the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapped {
    len: usize,
    /// Device and inode of the file mapped.
    file: (u64, u64),
}

/// The daemon side: a listening socket in front of one device.
///
/// Dropping it closes every connection and removes the socket file (if it is still the one this
/// server created).
pub struct Server {
    device: Arc<Device>,
    listener: OwnedFd,
    path: PathBuf,
    /// Device and inode of the socket file.
    ident: (u64, u64),
    clients: Vec<OwnedFd>,
    maps: BTreeMap<u64, Mapped>,
}

/// A reply: text, and whether BAR0's descriptor goes with it.
struct Reply {
    text: String,
    bar0: bool,
}

fn reply(text: impl Into<String>) -> Reply {
    Reply { text: text.into(), bar0: false }
}

fn ctx(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

/// A number: `0x` hexadecimal or decimal.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The value of `key=...` among `args`.
fn arg(args: &[&str], key: &str) -> Result<u64, String> {
    let v = args
        .iter()
        .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .ok_or_else(|| format!("missing {key}=NUMBER"))?;
    number(v).ok_or_else(|| format!("{key}={v}: not a number"))
}

impl Server {
    /// Listens on `path` for clients of `device`. A stale socket file (nobody listening) is
    /// replaced; a live one, or any other file, is an error.
    pub fn bind(device: Arc<Device>, path: &Path) -> io::Result<Server> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: exists and is not a socket", path.display()),
                ));
            }
            match fdpass::connect(path, Duration::from_secs(1)) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{}: another daemon is serving this socket", path.display()),
                    ));
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    std::fs::remove_file(path).map_err(|e| ctx(path, "remove stale socket", e))?;
                }
                Err(e) => return Err(ctx(path, "probe existing socket", e)),
            }
        }
        let listener = fdpass::listen(path).map_err(|e| ctx(path, "listen", e))?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| ctx(path, "stat", e))?;
        Ok(Server {
            device,
            listener,
            path: path.to_owned(),
            ident: (meta.dev(), meta.ino()),
            clients: Vec::new(),
            maps: BTreeMap::new(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device served.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Serves until `stop` is set (checked every 50 ms).
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        while !stop.load(Ordering::Acquire) {
            self.poll(POLL_INTERVAL)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for connections and requests and serves what came. Errors are
    /// those of the listening socket only; a client's trouble disconnects that client.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        let ready = {
            let mut fds = vec![self.listener.as_fd()];
            fds.extend(self.clients.iter().map(|c| c.as_fd()));
            fdpass::poll_readable(&fds, timeout).map_err(|e| ctx(&self.path, "poll", e))?
        };
        let mut gone = vec![false; self.clients.len()];
        for i in 0..self.clients.len() {
            if ready[i + 1] {
                gone[i] = !self.serve_client(i);
            }
        }
        let mut gone = gone.into_iter();
        self.clients.retain(|_| !gone.next().unwrap_or(false));
        if ready[0] {
            self.accept_all();
        }
        Ok(())
    }

    fn accept_all(&mut self) {
        for _ in 0..BURST {
            match fdpass::accept(&self.listener) {
                Ok(Some(c)) if self.clients.len() < MAX_CLIENTS => self.clients.push(c),
                Ok(Some(c)) => {
                    let msg = format!("- err too many clients (at most {MAX_CLIENTS})");
                    let _ = fdpass::send(&c, msg.as_bytes(), None, true);
                }
                Ok(None) => return,
                Err(_) => {
                    // Out of descriptors or similar: leave the connection queued and let the
                    // clients that are connected carry on; try again next round.
                    std::thread::sleep(POLL_INTERVAL);
                    return;
                }
            }
        }
    }

    /// Serves the waiting requests of client `i`; false if it is gone.
    fn serve_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; MAX_REQUEST];
        for _ in 0..BURST {
            let got = match fdpass::recv(&self.clients[i], &mut buf, true) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            };
            if got.len == 0 && got.fd.is_none() && !got.truncated {
                return false;
            }
            let text = if got.truncated {
                Err(format!("request longer than {MAX_REQUEST} bytes"))
            } else if got.extra_fds {
                Err("more than one file descriptor attached".to_owned())
            } else {
                std::str::from_utf8(&buf[..got.len])
                    .map(str::trim)
                    .map_err(|_| "request is not UTF-8 text".to_owned())
            };
            let (id, reply) = match text {
                Ok(t) => self.handle(t, got.fd),
                Err(e) => ("-".to_owned(), reply(format!("err {e}"))),
            };
            let out = format!("{id} {}", reply.text);
            let fd = if reply.bar0 { self.device.bar0().fd() } else { None };
            // A client that does not read its replies is dropped rather than waited for.
            if fdpass::send(&self.clients[i], out.as_bytes(), fd, true).is_err() {
                return false;
            }
        }
        true
    }

    /// Answers one request: (id to echo, reply).
    fn handle(&mut self, text: &str, fd: Option<OwnedFd>) -> (String, Reply) {
        let mut words = text.split_whitespace();
        let id = match words.next().filter(|w| w.parse::<u64>().is_ok()) {
            Some(id) => id.to_owned(),
            None => {
                return ("-".to_owned(), reply("err a request starts with a numeric id"));
            }
        };
        let verb = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let r = match verb {
            "hello" => self.hello(),
            "map" => self.map(&args, fd),
            "unmap" => self.unmap(&args),
            "stats" => Ok(reply(format!("ok {}", self.device.stats().to_json()))),
            "inject" => self.inject(&args),
            "present" => Ok(reply(format!("ok present={}", u8::from(self.device.present())))),
            "" => Err("empty request".to_owned()),
            _ => {
                Err(format!("unknown request '{verb}' (hello, map, unmap, stats, inject, present)"))
            }
        };
        (id, r.unwrap_or_else(|e| reply(format!("err {e}"))))
    }

    fn hello(&self) -> Result<Reply, String> {
        let bar = self.device.bar0();
        bar.fd().ok_or("BAR0 has no file descriptor to share")?;
        let cfg = self.device.config();
        Ok(Reply {
            text: format!(
                "ok proto={PROTO_VERSION} bar0_len={:#x} vports={} queues={}",
                bar.len(),
                cfg.vports,
                cfg.max_queues
            ),
            bar0: true,
        })
    }

    fn map(&mut self, args: &[&str], fd: Option<OwnedFd>) -> Result<Reply, String> {
        let iova = arg(args, "iova")?;
        let len = arg(args, "len")?;
        let fd = fd.ok_or("map needs the segment's file descriptor attached")?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| format!("stat of the segment: {e}"))?;
        let len = usize::try_from(len).map_err(|_| format!("len={len:#x} is too large"))?;
        if len == 0 {
            return Err("len=0: nothing to map".to_owned());
        }
        if !meta.is_file() {
            return Err("the descriptor attached is not a memory segment file".to_owned());
        }
        if (len as u64) > meta.len() {
            return Err(format!(
                "len={len:#x} is larger than the segment file ({:#x} bytes)",
                meta.len()
            ));
        }
        let new = Mapped { len, file: (meta.dev(), meta.ino()) };
        if self.maps.get(&iova) == Some(&new) {
            // The same memory again (a reconnecting driver): keep the mapping in place, so DMA
            // in flight never meets a gap.
            return Ok(reply("ok"));
        }
        let m = Mapping::from_file(iova, file, len).map_err(|e| format!("mmap: {e}"))?;
        if self.maps.get(&iova).is_some_and(|old| old.len == len) {
            // The same range from another file: replace it.
            let _ = self.device.unmap(iova);
            self.maps.remove(&iova);
        }
        self.device.map(vec![m]).map_err(|e| e.to_string())?;
        self.maps.insert(iova, new);
        Ok(reply("ok"))
    }

    fn unmap(&mut self, args: &[&str]) -> Result<Reply, String> {
        let iova = arg(args, "iova")?;
        self.device.unmap(iova).map_err(|e| e.to_string())?;
        self.maps.remove(&iova);
        Ok(reply("ok"))
    }

    fn inject(&self, args: &[&str]) -> Result<Reply, String> {
        if args.is_empty() {
            return Err("inject needs a fault, e.g. 'inject reset-request'".to_owned());
        }
        let fault: Fault = args.join(" ").parse().map_err(|e| format!("{e}"))?;
        self.device.inject(fault).map_err(|e| e.to_string())?;
        Ok(reply("ok"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.ident {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Serves `device` on `path` until `stop` is set; removes the socket file on return.
pub fn serve(device: Arc<Device>, path: &Path, stop: &AtomicBool) -> io::Result<()> {
    Server::bind(device, path)?.run(stop)
}

/// The request/reply half of a client connection.
struct Conn {
    sock: OwnedFd,
    path: PathBuf,
    next_id: Cell<u64>,
}

impl Conn {
    /// Sends `req` and returns the text after `ok` and any descriptor that came back.
    fn request(
        &self,
        req: &str,
        fd: Option<BorrowedFd<'_>>,
    ) -> io::Result<(String, Option<OwnedFd>)> {
        let verb = req.split_whitespace().next().unwrap_or("");
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let err = |what: &str, e: io::Error| ctx(&self.path, &format!("{verb}: {what}"), e);
        let msg = format!("{id} {req}");
        fdpass::send(&self.sock, msg.as_bytes(), fd, false).map_err(|e| err("send", e))?;
        let mut buf = vec![0u8; MAX_REPLY];
        let want = id.to_string();
        // Replies to earlier requests that timed out may still be queued: skip them (bounded).
        for _ in 0..64 {
            let got = fdpass::recv(&self.sock, &mut buf, false).map_err(|e| {
                if e.kind() == io::ErrorKind::WouldBlock {
                    err("no reply in time", io::Error::from(io::ErrorKind::TimedOut))
                } else {
                    err("receive", e)
                }
            })?;
            if got.len == 0 && got.fd.is_none() {
                return Err(err(
                    "the daemon closed the connection",
                    io::Error::from(io::ErrorKind::ConnectionAborted),
                ));
            }
            if got.truncated {
                return Err(err("reply too long", io::Error::from(io::ErrorKind::InvalidData)));
            }
            let text = String::from_utf8_lossy(&buf[..got.len]);
            let (rid, rest) = text.split_once(' ').unwrap_or((&text, ""));
            if rid != want && rid != "-" {
                continue;
            }
            let rest = rest.trim();
            if let Some(ok) = rest.strip_prefix("ok") {
                return Ok((ok.trim().to_owned(), got.fd));
            }
            let why = rest.strip_prefix("err").unwrap_or(rest).trim();
            return Err(io::Error::other(format!("{}: {verb}: {why}", self.path.display())));
        }
        Err(err("no matching reply", io::Error::from(io::ErrorKind::InvalidData)))
    }
}

/// A connection to a daemon's device: what a driver process uses instead of an in-process
/// [`Device`].
///
/// Requests are answered in order, one at a time; a client is `Send` but not `Sync` (one thread
/// at a time talks through it). Every error says which socket and which request.
pub struct Client {
    conn: Conn,
    bar0: Arc<MemSegment>,
    vports: u16,
    max_queues: u32,
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("path", &self.conn.path)
            .field("vports", &self.vports)
            .field("bar0_len", &self.bar0.len())
            .finish()
    }
}

impl Client {
    /// Connects to the daemon at `path`, says hello and maps BAR0.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let sock = fdpass::connect(path, DEFAULT_TIMEOUT).map_err(|e| {
            ctx(path, "connect to the mana-emu daemon (is `mana-emu --socket` running?)", e)
        })?;
        let conn = Conn { sock, path: path.to_owned(), next_id: Cell::new(1) };
        let (text, fd) = conn.request("hello", None)?;
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: hello: {why} (reply '{text}')", path.display()),
            )
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let proto = arg(&words, "proto").map_err(|e| bad(&e))?;
        if proto != u64::from(PROTO_VERSION) {
            return Err(bad(&format!("protocol {proto}, this client speaks {PROTO_VERSION}")));
        }
        let vports = arg(&words, "vports").map_err(|e| bad(&e))?;
        let queues = arg(&words, "queues").map_err(|e| bad(&e))?;
        let bar_len = arg(&words, "bar0_len").map_err(|e| bad(&e))?;
        let fd = fd.ok_or_else(|| bad("no BAR0 descriptor attached"))?;
        let bar0 = MemSegment::from_file("mana-emu-bar0", File::from(fd), 4096)
            .map_err(|e| bad(&format!("map BAR0: {e}")))?;
        if bar0.len() as u64 != bar_len {
            return Err(bad(&format!("BAR0 file is {:#x} bytes", bar0.len())));
        }
        Ok(Client {
            bar0: Arc::new(bar0),
            vports: u16::try_from(vports).map_err(|_| bad("vports out of range"))?,
            max_queues: u32::try_from(queues).map_err(|_| bad("queues out of range"))?,
            conn,
            _not_sync: PhantomData,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.conn.path
    }

    /// BAR0 of the device, mapped in this process (the same memory the device polls).
    pub fn bar0(&self) -> &Arc<MemSegment> {
        &self.bar0
    }

    /// Number of vports.
    pub fn vports(&self) -> u16 {
        self.vports
    }

    /// Queues per vport the device offers.
    pub fn max_queues(&self) -> u32 {
        self.max_queues
    }

    /// How long to wait for each reply (default [`DEFAULT_TIMEOUT`]; zero counts as 1 µs, never
    /// as "forever").
    pub fn set_timeout(&self, t: Duration) -> io::Result<()> {
        fdpass::set_timeout(&self.conn.sock, t).map_err(|e| ctx(&self.conn.path, "set timeout", e))
    }

    /// Maps a whole segment for device DMA at its IOVA. Mapping the same segment again (after a
    /// reconnect) is accepted.
    pub fn map(&self, seg: &MemSegment) -> io::Result<()> {
        let fd = seg.fd().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("segment '{}' has no file descriptor to pass", seg.name()),
            )
        })?;
        self.map_fd(seg.iova_base(), seg.len(), fd)
    }

    /// Maps the first `len` bytes of the file behind `fd` at IOVA `iova`.
    pub fn map_fd(&self, iova: u64, len: usize, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.conn.request(&format!("map iova={iova:#x} len={len:#x}"), Some(fd)).map(drop)
    }

    /// Unmaps the mapping that starts at `iova`.
    pub fn unmap(&self, iova: u64) -> io::Result<()> {
        self.conn.request(&format!("unmap iova={iova:#x}"), None).map(drop)
    }

    /// The device counters as JSON ([`Stats::to_json`](crate::Stats::to_json)).
    pub fn stats_json(&self) -> io::Result<String> {
        self.conn.request("stats", None).map(|(t, _)| t)
    }

    /// Commits a fault, given in [`Fault`]'s words (`reset-request`, `sq-error 30`, ...).
    pub fn inject(&self, fault: &str) -> io::Result<()> {
        if fault.contains(['\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a fault description is one line",
            ));
        }
        self.conn.request(&format!("inject {fault}"), None).map(drop)
    }

    /// False while the device is hot-removed.
    pub fn present(&self) -> io::Result<bool> {
        let (t, _) = self.conn.request("present", None)?;
        match t.as_str() {
            "present=1" => Ok(true),
            "present=0" => Ok(false),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: present: unexpected reply '{t}'", self.conn.path.display()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceConfig, WireSpec};
    use pmd_mempool::HugePolicy;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::AtomicU32;

    /// A temporary directory, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "mana-emu-link-{tag}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A server on its own thread, stopped and joined on drop.
    struct Running {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    }
    impl Running {
        fn start(device: Arc<Device>, path: &Path) -> Running {
            let mut server = Server::bind(device, path).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let thread = std::thread::spawn(move || server.run(&s));
            Running { stop, thread: Some(thread) }
        }
        fn stop(mut self) -> io::Result<()> {
            self.stop.store(true, Ordering::Release);
            self.thread.take().unwrap().join().unwrap()
        }
    }
    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn device() -> Arc<Device> {
        Arc::new(Device::start(DeviceConfig::new(2, WireSpec::Pair)).unwrap())
    }

    fn file_of(seg: &MemSegment) -> File {
        File::from(seg.fd().unwrap().try_clone_to_owned().unwrap())
    }

    #[test]
    fn hello_map_stats_inject_and_reconnect() {
        let dir = TempDir::new("main");
        let path = dir.0.join("emu.sock");
        let dev = device();
        let server = Running::start(dev.clone(), &path);

        let c = Client::connect(&path).unwrap();
        assert_eq!((c.vports(), c.max_queues()), (2, 16));
        // BAR0 is the device's own segment: same file, same size, register map in place.
        let bar = c.bar0();
        assert_eq!(bar.len(), dev.bar0().len());
        let (mine, theirs) =
            (file_of(bar).metadata().unwrap(), file_of(dev.bar0()).metadata().unwrap());
        assert_eq!((mine.dev(), mine.ino()), (theirs.dev(), theirs.ino()));
        let mut db_off = [0u8; 8];
        file_of(bar).read_exact_at(&mut db_off, 0x08).unwrap();
        assert_eq!(u64::from_le_bytes(db_off), 0x1000, "doorbell page offset");

        // Map a segment; the same segment again is fine; an overlapping different range is not.
        let seg = MemSegment::anonymous("link-test-a", 64 << 10, HugePolicy::Never).unwrap();
        let iova = seg.iova_base();
        c.map(&seg).unwrap();
        c.map(&seg).unwrap();
        let e = c.map_fd(iova, seg.len() / 2, seg.fd().unwrap()).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        let e =
            c.map_fd(iova + seg.len() as u64 * 4, seg.len() * 2, seg.fd().unwrap()).unwrap_err();
        assert!(e.to_string().contains("larger than the segment"), "{e}");
        let e = c.map_fd(iova + seg.len() as u64 * 4, 0, seg.fd().unwrap()).unwrap_err();
        assert!(e.to_string().contains("len=0"), "{e}");

        // Stats: one JSON object with the device counters and one entry per vport.
        let j = c.stats_json().unwrap();
        assert!(j.starts_with("{\"device\":{") && j.ends_with('}'), "{j}");
        assert!(j.contains("\"loops\":") && j.contains("\"hwc_requests\":{"), "{j}");
        assert_eq!(j.matches("\"rx_packets\":").count(), 2, "{j}");
        assert_eq!(j.matches('{').count(), j.matches('}').count(), "{j}");

        // Faults: bad words come back as errors; good ones take effect.
        let e = c.inject("explode").unwrap_err();
        assert!(e.to_string().contains("unknown fault"), "{e}");
        let e = c.inject("sq-error").unwrap_err();
        assert!(e.to_string().contains("needs a send queue id"), "{e}");
        assert!(c.present().unwrap());
        c.inject("remove").unwrap();
        assert!(!c.present().unwrap());
        assert!(!dev.present());
        c.inject("readd").unwrap();
        assert!(c.present().unwrap());

        // A second client at the same time sees the same device.
        let c2 = Client::connect(&path).unwrap();
        assert!(c2.present().unwrap());
        drop(c2);

        // Disconnect and reconnect: the mapping survived (an overlap is still refused), the
        // same segment maps again, the range from another file replaces it.
        drop(c);
        let c = Client::connect(&path).unwrap();
        assert!(c.map_fd(iova, seg.len() / 2, seg.fd().unwrap()).is_err(), "still mapped");
        c.map(&seg).unwrap();
        let other = MemSegment::anonymous("link-test-b", 64 << 10, HugePolicy::Never).unwrap();
        c.map_fd(iova, seg.len(), other.fd().unwrap()).unwrap();
        assert!(c.map_fd(iova, seg.len() / 2, seg.fd().unwrap()).is_err(), "replaced, not gone");
        c.unmap(iova).unwrap();
        let e = c.unmap(iova).unwrap_err();
        assert!(e.to_string().contains("no mapping starts at"), "{e}");
        c.map_fd(iova, seg.len() / 2, seg.fd().unwrap()).unwrap();
        c.unmap(iova).unwrap();

        drop(c);
        server.stop().unwrap();
        assert!(!path.exists(), "socket file removed");
        assert!(Client::connect(&path).is_err());
    }

    #[test]
    fn bad_requests_get_error_replies() {
        let dir = TempDir::new("bad");
        let path = dir.0.join("emu.sock");
        let _server = Running::start(device(), &path);
        let raw = fdpass::connect(&path, Duration::from_secs(10)).unwrap();
        let ask = |msg: &[u8], fd: Option<BorrowedFd<'_>>| {
            fdpass::send(&raw, msg, fd, false).unwrap();
            let mut buf = vec![0u8; MAX_REPLY];
            let r = fdpass::recv(&raw, &mut buf, false).unwrap();
            assert!(r.len > 0, "a reply to {:?}", String::from_utf8_lossy(msg));
            String::from_utf8(buf[..r.len].to_vec()).unwrap()
        };
        let seg = MemSegment::anonymous("link-test-bad", 4096, HugePolicy::Never).unwrap();
        let cases: &[(&[u8], &str)] = &[
            (b"stats", "- err a request starts with a numeric id"),
            (b"1", "1 err empty request"),
            (b"2 fly", "2 err unknown request 'fly'"),
            (b"\xff\xfe", "- err request is not UTF-8"),
            (b"3 map iova=0x1000 len=0x1000", "3 err map needs the segment's file descriptor"),
            (b"4 unmap", "4 err missing iova=NUMBER"),
            (b"5 unmap iova=zz", "5 err iova=zz: not a number"),
            (b"6 inject", "6 err inject needs a fault"),
            (b"6 inject sq-error 1 2", "6 err sq-error 1 2: too many arguments"),
            (b"7 unmap iova=0x1000", "7 err no mapping starts at IOVA 0x1000"),
        ];
        for (req, want) in cases {
            let got = ask(req, None);
            assert!(got.starts_with(want), "{:?}: {got}", String::from_utf8_lossy(req));
        }
        let long = vec![b'x'; MAX_REQUEST + 10];
        assert!(ask(&long, None).starts_with("- err request longer than 4096 bytes"));
        // A descriptor on a request that takes none is closed and ignored.
        assert_eq!(ask(b"8 present", Some(seg.fd().unwrap())), "8 ok present=1");
        // A segment file that is not a regular file (the socket itself).
        let got = ask(b"9 map iova=0x1000 len=0x1000", Some(raw.as_fd()));
        assert!(got.starts_with("9 err the descriptor attached is not a memory segment"), "{got}");
        // The daemon is still serving.
        let c = Client::connect(&path).unwrap();
        assert!(c.stats_json().unwrap().contains("\"vports\":["));
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_not_waited_for() {
        let dir = TempDir::new("deaf");
        let path = dir.0.join("emu.sock");
        let _server = Running::start(device(), &path);
        let deaf = fdpass::connect(&path, Duration::from_secs(10)).unwrap();
        // Far more replies than fit the daemon's send buffer (each stats reply is over 1 KiB,
        // the buffer a few hundred KiB): the daemon must give up on this client.
        const REQUESTS: usize = 2000;
        let mut sent = 0;
        for i in 0..REQUESTS {
            if fdpass::send(&deaf, format!("{i} stats").as_bytes(), None, false).is_err() {
                break;
            }
            sent += 1;
        }
        let mut buf = vec![0u8; MAX_REPLY];
        let mut replies = 0;
        let closed = loop {
            match fdpass::recv(&deaf, &mut buf, false) {
                Ok(r) if r.len == 0 => break true,
                Ok(_) => replies += 1,
                Err(e) => break e.kind() == io::ErrorKind::ConnectionReset,
            }
            assert!(replies <= sent, "more replies than requests");
        };
        assert!(closed, "the daemon closed the connection");
        assert!(replies < REQUESTS, "{replies} replies to {sent} requests");
        // Meanwhile and afterwards, others are served.
        let c = Client::connect(&path).unwrap();
        assert!(c.present().unwrap());
    }

    #[test]
    fn sockets_in_the_way() {
        let dir = TempDir::new("way");
        let path = dir.0.join("emu.sock");
        let dev = device();
        // A stale socket (nobody listening) is replaced.
        drop(fdpass::listen(&path).unwrap());
        assert!(path.exists());
        let server = Running::start(dev.clone(), &path);
        Client::connect(&path).unwrap();
        // A live one is not.
        let e = Server::bind(dev.clone(), &path).err().expect("socket in use");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        server.stop().unwrap();
        // Nor is a plain file, which is left alone.
        std::fs::write(&path, b"keep me").unwrap();
        let e = Server::bind(dev, &path).err().expect("not a socket");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
