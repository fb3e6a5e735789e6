//! TAP wire: a vport attached to a Linux TAP interface.
//!
//! `/dev/net/tun` is opened with `IFF_TAP | IFF_NO_PI` (plain Ethernet frames, no packet
//! information header) for the interface name: an existing TAP interface of that name is attached,
//! otherwise a new one is created (it disappears when the port is dropped, unless it was made
//! persistent beforehand, e.g. with `ip tuntap add`). The interface is set up (`IFF_UP`) so frames
//! flow; addresses, bridges and MTU are the caller's business. One `read` or `write` on the
//! non-blocking descriptor moves one frame.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::zeroed;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::afpacket::{MAX_SKIP, PortCounters, cvt, ifname};
use super::{Port, WireError};

/// The largest frame a TAP interface can hand over (64 KiB MTU plus headers): what does not fit
/// the caller's buffer lands here, so it is seen whole and dropped, never truncated.
const OVERFLOW: usize = 65536 + 64;

/// A TAP interface.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    overflow: Box<[u8]>,
    counters: PortCounters,
}

/// An `ifreq` naming interface `name` (checked by `ifname`: at most 15 bytes).
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data (a name and a union of plain values); all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *d = s as libc::c_char;
    }
    ifr
}

/// Sets interface `name` up (`SIOCGIFFLAGS`, then `SIOCSIFFLAGS` with `IFF_UP` added).
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: plain system call with constant arguments.
    let raw =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `ifr`, a valid ifreq.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) })?;
    // SAFETY: SIOCGIFFLAGS filled in `ifru_flags`, the union member read here.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from `ifr`, a valid ifreq.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) })?;
    Ok(())
}

impl Tap {
    /// Opens or creates TAP interface `name` (in this thread's network namespace) and sets it
    /// up.
    pub fn open(name: &str) -> Result<Self, WireError> {
        let err =
            |op: &str, source: io::Error| WireError { what: format!("tap {name}: {op}"), source };
        ifname(name).map_err(|e| err("name", e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| err("open /dev/net/tun", e))?;
        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads the name and flags from `ifr`, a valid ifreq, and may write the
        // name back; the fd is the open tun device.
        cvt(unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) })
            .map_err(|e| err("TUNSETIFF (not a TAP interface, in use, or no CAP_NET_ADMIN)", e))?;
        set_up(name).map_err(|e| err("set up (SIOCSIFFLAGS)", e))?;
        Ok(Tap {
            file,
            name: name.to_owned(),
            overflow: vec![0u8; OVERFLOW].into_boxed_slice(),
            counters: PortCounters::default(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters so far.
    pub fn counters(&self) -> PortCounters {
        self.counters
    }
}

impl Port for Tap {
    fn send(&mut self, frame: &[u8]) -> bool {
        // SAFETY: the pointer and length describe `frame`, which the kernel only reads.
        let n = unsafe { libc::write(self.file.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n >= 0 && n as usize == frame.len() {
            self.counters.frames_out += 1;
            self.counters.bytes_out += frame.len() as u64;
            true
        } else {
            self.counters.drops_out += 1;
            false
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        for _ in 0..MAX_SKIP {
            let iov = [
                libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() },
                libc::iovec {
                    iov_base: self.overflow.as_mut_ptr().cast(),
                    iov_len: self.overflow.len(),
                },
            ];
            // SAFETY: both iovecs describe writable memory owned by `buf` and `self.overflow`,
            // borrowed mutably for the duration of the call.
            let n = unsafe { libc::readv(self.file.as_raw_fd(), iov.as_ptr(), 2) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return None,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        self.counters.errors_in += 1;
                        return None;
                    }
                }
            }
            let n = n as usize;
            if n == 0 {
                return None;
            }
            if n > buf.len() {
                self.counters.drops_oversize += 1;
                continue;
            }
            self.counters.frames_in += 1;
            self.counters.bytes_in += n as u64;
            return Some(n);
        }
        None
    }
}

/// Network namespaces for the wire tests: they need root and `ip`.
#[cfg(test)]
pub(crate) mod testnet {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use crate::wire::Port;

    /// Ethertype of test frames (IEEE 802 local experimental).
    pub(crate) const TEST_ETHERTYPE: u16 = 0x88b5;

    /// True if the tests can make namespaces and interfaces; otherwise says why they skip.
    pub(crate) fn usable() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (network namespaces, veth and TAP interfaces)");
            return false;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("skipped: the `ip` command (iproute2) is missing");
            return false;
        }
        true
    }

    /// A network namespace of the test's own, deleted (with its interfaces) on drop, even when
    /// the test fails.
    pub(crate) struct Netns {
        pub(crate) name: String,
    }

    static SEQ: AtomicU32 = AtomicU32::new(0);

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    impl Netns {
        /// A fresh namespace `mewire-TAG-PID-N`, with IPv6 off so that no interface sends
        /// anything of its own (router solicitations, MLD reports) while a test counts frames.
        pub(crate) fn new(tag: &str) -> Netns {
            let name = format!(
                "mewire-{tag}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            ip(&["netns", "add", &name]);
            let ns = Netns { name };
            if std::path::Path::new("/proc/sys/net/ipv6").exists() {
                ip(&[
                    "netns",
                    "exec",
                    &ns.name,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ]);
            }
            ns
        }

        /// `ip -n NS ARGS...`; panics if it fails.
        pub(crate) fn ip(&self, args: &[&str]) {
            let mut all = vec!["-n", &self.name];
            all.extend_from_slice(args);
            ip(&all);
        }

        /// Runs `f` on a thread that has entered the namespace (sockets and TAP interfaces it
        /// creates live there); a panic in `f` is passed on.
        pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
            let path = format!("/run/netns/{}", self.name);
            std::thread::scope(|s| {
                let h = s.spawn(|| {
                    let ns = File::open(&path).expect("open netns");
                    // SAFETY: `ns` is an open namespace file; setns changes only this thread's
                    // network namespace, and this thread ends when `f` returns.
                    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                });
                match h.join() {
                    Ok(t) => t,
                    Err(p) => std::panic::resume_unwind(p),
                }
            })
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        }
    }

    /// A broadcast test frame of `len` bytes whose payload bytes are all `tag`.
    pub(crate) fn test_frame(tag: u8, len: usize) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, tag]);
        f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
        f
    }

    /// The next frame `port` receives, waiting up to 5 s (a bound against hangs, not a
    /// performance limit).
    pub(crate) fn recv_frame(port: &mut dyn Port, buf: &mut [u8]) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(n) = port.recv(buf) {
                return Some(buf[..n].to_vec());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::testnet::{self, Netns, recv_frame, test_frame};
    use super::*;
    use crate::wire::afpacket::AfPacket;

    #[test]
    fn bad_names_are_refused_with_the_name() {
        let e = Tap::open("a-name-far-too-long").unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("a-name-far-too-long"), "{e}");
        assert!(Tap::open("a/b").is_err());
    }

    #[test]
    fn frames_cross_a_tap_both_ways() {
        if !testnet::usable() {
            return;
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: /dev/net/tun is missing");
            return;
        }
        let ns = Netns::new("tap");
        ns.run(|| {
            // The TAP is created in the namespace and set up by `open`; an AF_PACKET socket on
            // the same interface is the kernel side: what the TAP writes arrives there, what it
            // sends leaves through the TAP.
            let mut tap = Tap::open("metap0").unwrap();
            assert_eq!(tap.name(), "metap0");
            let mut kernel = AfPacket::open("metap0").unwrap();
            let mut buf = vec![0u8; 2048];

            let to_kernel = test_frame(0x11, 90);
            assert!(tap.send(&to_kernel), "write to an up TAP");
            assert_eq!(recv_frame(&mut kernel, &mut buf).as_deref(), Some(&to_kernel[..]));

            let to_tap = test_frame(0x22, 400);
            assert!(kernel.send(&to_tap));
            assert_eq!(recv_frame(&mut tap, &mut buf).as_deref(), Some(&to_tap[..]));

            // Too big for the buffer: dropped and counted; the frame after it arrives intact.
            let big = test_frame(0x33, 1200);
            let small = test_frame(0x44, 60);
            assert!(kernel.send(&big));
            assert!(kernel.send(&small));
            assert_eq!(recv_frame(&mut tap, &mut buf[..100]).as_deref(), Some(&small[..]));
            assert_eq!(tap.recv(&mut buf), None, "nothing else waiting");

            let c = tap.counters();
            assert_eq!((c.frames_out, c.bytes_out), (1, 90));
            assert_eq!((c.frames_in, c.bytes_in), (2, 400 + 60));
            assert_eq!(c.drops_oversize, 1, "{c:?}");
            assert_eq!(c.drops_out + c.errors_in, 0);

            // The interface is taken: a second open fails and names it.
            let e = Tap::open("metap0").unwrap_err();
            assert!(e.to_string().contains("metap0"), "{e}");
        });
    }
}
