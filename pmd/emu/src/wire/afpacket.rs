//! AF_PACKET wire: a vport attached to an existing Linux interface (a veth end, a bridge port,
//! a real NIC) through a raw packet socket.
//!
//! The socket is bound to the interface's ifindex, non-blocking, in promiscuous mode
//! (`PACKET_MR_PROMISC`, dropped by the kernel when the socket closes) and with
//! `PACKET_QDISC_BYPASS` when the kernel has it. Frames the interface transmits
//! (`PACKET_OUTGOING`, which includes every frame this socket sends) are never handed to the
//! device: the kernel is asked not to deliver them (`PACKET_IGNORE_OUTGOING`) and the packet type
//! of every received frame is checked as well, so the device never loops its own TX back.
//!
//! With qdisc bypass, frames the device sends skip the interface's taps: `tcpdump -i IF` on the
//! same interface does not show them (capture on the peer instead).
//!
//! Nothing on the interface is changed except promiscuous mode: offloads (VLAN stripping, GRO)
//! are the business of the scripts that set up the interfaces (`ethtool -K IF rxvlan off gro
//! off`); with VLAN stripping on, received frames arrive without their tag.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Port, WireError};

/// Traffic counters of a TAP or AF_PACKET port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames handed to the device.
    pub frames_in: u64,
    /// Bytes handed to the device.
    pub bytes_in: u64,
    /// Frames sent to the interface.
    pub frames_out: u64,
    /// Bytes sent to the interface.
    pub bytes_out: u64,
    /// Received frames larger than the device's buffer: dropped whole, never truncated.
    pub drops_oversize: u64,
    /// Frames the interface refused (queue full, interface down, frame too short or too long).
    pub drops_out: u64,
    /// Receive errors other than "nothing waiting" (for example the interface went down).
    pub errors_in: u64,
}

/// Most frames one `recv` call skips (outgoing or oversized) before it reports "nothing".
pub(crate) const MAX_SKIP: usize = 256;

/// An interface through AF_PACKET.
#[derive(Debug)]
pub struct AfPacket {
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    qdisc_bypass: bool,
    counters: PortCounters,
}

/// `name` as a C string, if it can be an interface name (1..=15 bytes, no NUL or '/').
pub(crate) fn ifname(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is not an interface name (1 to 15 bytes, no '/')"),
        ));
    }
    CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "an interface name cannot contain NUL")
    })
}

/// Turns a `-1` return into the `errno` error.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// `setsockopt` of one plain value.
fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of `size_of::<T>()` bytes, which the kernel only reads;
    // the fd is open (owned by the caller's struct).
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

impl AfPacket {
    /// Opens AF_PACKET on interface `name` (which must exist in this thread's network
    /// namespace).
    pub fn open(name: &str) -> Result<Self, WireError> {
        let err = |op: &str, source: io::Error| WireError {
            what: format!("afpacket {name}: {op}"),
            source,
        };
        let cname = ifname(name).map_err(|e| err("name", e))?;
        // SAFETY: `cname` is a NUL-terminated string that lives across the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(err("no such interface", io::Error::last_os_error()));
        }
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| err("ifindex", io::Error::from(io::ErrorKind::InvalidData)))?;
        // Protocol 0: the socket receives nothing until it is bound to the interface, so no
        // frame of another interface gets queued in between.
        // SAFETY: plain system call with constant arguments.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })
        .map_err(|e| err("socket(AF_PACKET) (needs CAP_NET_RAW)", e))?;
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map_err(|e| err("bind", e))?;

        // SAFETY: packet_mreq is plain old data; all zeroes is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { zeroed() };
        mreq.mr_ifindex = ifindex;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| err("PACKET_ADD_MEMBERSHIP promiscuous", e))?;
        // Optional: older kernels lack these; the receive path checks the packet type anyway.
        let one: libc::c_int = 1;
        let qdisc_bypass =
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one).is_ok();
        let _ = setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
        let rcvbuf: libc::c_int = 4 << 20;
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);

        Ok(AfPacket {
            fd,
            name: name.to_owned(),
            ifindex,
            qdisc_bypass,
            counters: PortCounters::default(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Whether frames bypass the interface's queueing discipline.
    pub fn qdisc_bypass(&self) -> bool {
        self.qdisc_bypass
    }

    /// The counters so far.
    pub fn counters(&self) -> PortCounters {
        self.counters
    }
}

impl Port for AfPacket {
    fn send(&mut self, frame: &[u8]) -> bool {
        // SAFETY: the pointer and length describe `frame`, which the kernel only reads; the
        // socket is bound, so no address is needed.
        let n = unsafe {
            libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT)
        };
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
            // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { zeroed() };
            let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` is writable for `buf.len()` bytes (MSG_TRUNC makes the kernel return
            // the real length but it still writes at most `buf.len()`); `from` and `from_len`
            // describe a writable sockaddr_ll.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
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
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let n = n as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tap::testnet::{self, Netns, recv_frame, test_frame};

    #[test]
    fn bad_names_are_reported_with_the_name() {
        let e = AfPacket::open("mana-no-such-if").unwrap_err();
        assert!(e.to_string().contains("mana-no-such-if"), "{e}");
        let e = AfPacket::open("a-name-far-too-long").unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("a-name-far-too-long"), "{e}");
        assert!(AfPacket::open("").is_err());
    }

    #[test]
    fn frames_cross_a_veth_pair_and_never_loop_back() {
        if !testnet::usable() {
            return;
        }
        let ns = Netns::new("afp");
        ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
        ns.ip(&["link", "set", "va", "up"]);
        ns.ip(&["link", "set", "vb", "up"]);
        ns.run(|| {
            let mut a = AfPacket::open("va").unwrap();
            let mut b = AfPacket::open("vb").unwrap();
            assert!(a.ifindex() > 0 && a.ifindex() != b.ifindex());
            assert_eq!(a.name(), "va");
            let fa = test_frame(0xa1, 100);
            let fb = test_frame(0xb2, 300);
            let mut buf = vec![0u8; 2048];

            // A second socket on va stands for the host's own traffic out of va: the kernel
            // hands such frames to every packet socket of va (as PACKET_OUTGOING) except the
            // sender's, and the port must not take them for received frames.
            // (Without qdisc bypass: bypassed frames skip the taps of other packet sockets.)
            let mut host = AfPacket::open("va").unwrap();
            setsockopt(&host.fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &0).unwrap();
            let fh = test_frame(0xe5, 80);

            assert!(a.send(&fa));
            let got = recv_frame(&mut b, &mut buf).expect("frame from va reaches vb");
            assert_eq!(got, fa, "vb receives exactly what va sent");
            assert!(host.send(&fh));
            let got = recv_frame(&mut b, &mut buf).expect("host frame reaches vb");
            assert_eq!(got, fh);
            assert!(b.send(&fb));
            // va's outgoing frames were delivered to packet sockets (if at all) when they were
            // sent, before fb existed: the first frame va's port sees must be fb.
            let got = recv_frame(&mut a, &mut buf).expect("frame from vb reaches va");
            assert_eq!(got, fb, "va sees vb's frame, not an outgoing one");
            assert_eq!(a.recv(&mut buf), None, "nothing else waiting on va");

            // An oversized frame is dropped and counted, not truncated; the next one arrives.
            let big = test_frame(0xc3, 1000);
            let small = test_frame(0xd4, 64);
            assert!(a.send(&big));
            assert!(a.send(&small));
            let got = recv_frame(&mut b, &mut buf[..128]).expect("small frame after big one");
            assert_eq!(got, small);

            let ca = a.counters();
            let cb = b.counters();
            assert_eq!((ca.frames_out, ca.bytes_out), (3, 100 + 1000 + 64));
            assert_eq!((ca.frames_in, ca.bytes_in), (1, 300));
            assert_eq!((cb.frames_out, cb.bytes_out), (1, 300));
            assert_eq!((cb.frames_in, cb.bytes_in), (3, 100 + 80 + 64));
            assert_eq!(cb.drops_oversize, 1, "{cb:?}");
            assert_eq!(ca.drops_out + cb.drops_out + ca.errors_in + cb.errors_in, 0);
        });
    }
}
