//! Unix `SOCK_SEQPACKET` sockets that carry one message per packet and, with it, at most one file
//! descriptor (`SCM_RIGHTS`): the transport of the daemon protocol in [`crate::link`].
//!
//! The only unsafe code of the protocol is here: socket set-up, `sendmsg`/`recvmsg` with their
//! control messages, and `poll`. Every descriptor is an [`OwnedFd`] from the moment the kernel
//! hands it over, so it is closed on every path, including errors.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Turns a `-1` return into the `errno` error.
fn cvt<T: Copy + PartialOrd + Default>(r: T) -> io::Result<T> {
    if r < T::default() { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// A `sockaddr_un` for `path` and its length.
fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path '{}' must be 1 to {} bytes without NUL",
                path.display(),
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn socket(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant arguments.
    let raw = cvt(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | flags, 0)
    })?;
    // SAFETY: `raw` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A non-blocking listening socket bound to `path` (which must not exist).
pub(crate) fn listen(path: &Path) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    let fd = socket(libc::SOCK_NONBLOCK)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) })?;
    // SAFETY: plain system call on an open socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 16) })?;
    Ok(fd)
}

/// A blocking connection to the socket at `path`, with send and receive timeouts `timeout` (the
/// send timeout also bounds the wait for room in a full listen backlog).
pub(crate) fn connect(path: &Path, timeout: Duration) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    let fd = socket(0)?;
    set_timeout(&fd, timeout)?;
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        let r = unsafe {
            libc::connect(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len)
        };
        match cvt(r) {
            Ok(_) => return Ok(fd),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A waiting connection (non-blocking), or `None`.
pub(crate) fn accept(listener: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    // SAFETY: a null address is allowed (the peer address is not wanted).
    let r = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    match cvt(r) {
        // SAFETY: `raw` is a new descriptor nothing else owns.
        Ok(raw) => Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) })),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets the send and receive timeouts of a blocking socket (zero becomes 1 µs: the socket API
/// reads zero as "no timeout").
pub(crate) fn set_timeout(fd: &OwnedFd, t: Duration) -> io::Result<()> {
    let t = t.max(Duration::from_micros(1));
    let tv = libc::timeval {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: `tv` is a valid timeval of the size passed, which the kernel only reads.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
    }
    Ok(())
}

/// Control-message buffer: room for a few descriptors, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Cmsg([u8; 64]);

/// Most descriptors one received message may carry before the rest are cut off.
const MAX_FDS: usize = 8;

/// Sends `msg` as one packet, with `pass` attached. `dontwait`: fail with `WouldBlock` instead of
/// waiting for room (a server must not wait on a client that does not read). Never raises
/// SIGPIPE.
pub(crate) fn send(
    fd: &OwnedFd,
    msg: &[u8],
    pass: Option<BorrowedFd<'_>>,
    dontwait: bool,
) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: msg.as_ptr() as *mut libc::c_void, iov_len: msg.len() };
    let mut cmsg = Cmsg([0; 64]);
    // SAFETY: msghdr is plain old data; all zeroes (no name, no control) is a valid value.
    let mut hdr: libc::msghdr = unsafe { zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if let Some(pass) = pass {
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
        hdr.msg_control = cmsg.0.as_mut_ptr().cast();
        hdr.msg_controllen = space;
        // SAFETY: the control buffer is `space` bytes (<= 64), aligned, and set in `hdr`, so the
        // first header lies inside it; CMSG_DATA of it has room for one descriptor (that is what
        // `space` was computed for). The descriptor is written unaligned-safe.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), pass.as_raw_fd());
        }
    }
    let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: `hdr` points to `iov` (the message, only read) and, if set, the control
        // buffer; all live across the call.
        let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &hdr, flags) };
        match cvt(r) {
            Ok(n) if n as usize == msg.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("short send on a SOCK_SEQPACKET socket")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One received packet.
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes of the packet stored in the buffer (0 with no descriptor: the peer closed).
    pub(crate) len: usize,
    /// The packet was longer than the buffer (the rest is lost).
    pub(crate) truncated: bool,
    /// The first descriptor that came with it.
    pub(crate) fd: Option<OwnedFd>,
    /// More than one descriptor came (the others are closed), or some were cut off.
    pub(crate) extra_fds: bool,
}

/// Receives one packet into `buf`. `dontwait`: `WouldBlock` instead of waiting.
pub(crate) fn recv(fd: &OwnedFd, buf: &mut [u8], dontwait: bool) -> io::Result<Received> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cmsg = Cmsg([0; 64]);
    // SAFETY: msghdr is plain old data; all zeroes is a valid value.
    let mut hdr: libc::msghdr = unsafe { zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = cmsg.0.as_mut_ptr().cast();
    hdr.msg_controllen = cmsg.0.len();
    let flags = libc::MSG_CMSG_CLOEXEC | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    let n = loop {
        // SAFETY: `hdr` points to `iov` (describing `buf`, writable) and the control buffer,
        // both live and mutably borrowed across the call.
        let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags) };
        match cvt(r) {
            Ok(n) => break n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut extra = hdr.msg_flags & libc::MSG_CTRUNC != 0;
    // SAFETY: `hdr` was filled in by recvmsg: msg_control/msg_controllen describe the control
    // messages the kernel wrote into `cmsg`; CMSG_FIRSTHDR/CMSG_NXTHDR stay inside that buffer
    // and return null at its end.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&hdr) };
    while !c.is_null() {
        // SAFETY: `c` is a non-null header inside the control buffer (see above).
        let (level, kind, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: arithmetic.
            let data_off = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = len.saturating_sub(data_off) / size_of::<RawFd>();
            for i in 0..count.min(MAX_FDS) {
                // SAFETY: the kernel wrote `count` descriptors after the header, inside the
                // buffer; read unaligned.
                let raw =
                    unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i)) };
                // SAFETY: the kernel installed `raw` in this process for us; nothing else owns
                // it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        // SAFETY: as above: `c` is inside the buffer described by `hdr`.
        c = unsafe { libc::CMSG_NXTHDR(&hdr, c) };
    }
    if fds.len() > 1 {
        extra = true;
    }
    let fd = if fds.is_empty() { None } else { Some(fds.swap_remove(0)) };
    Ok(Received { len: n, truncated: hdr.msg_flags & libc::MSG_TRUNC != 0, fd, extra_fds: extra })
}

/// Waits up to `timeout` for any of `fds` to be readable (or closed, or in error); returns which
/// are. An interrupted wait returns all false.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd entries, mutably borrowed.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn packets_carry_a_descriptor() {
        let dir = std::env::temp_dir().join(format!("mana-emu-fdpass-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let l = listen(&path).unwrap();
        assert!(accept(&l).unwrap().is_none(), "nobody yet");
        let c = connect(&path, Duration::from_secs(5)).unwrap();
        let ready = poll_readable(&[l.as_fd()], Duration::from_secs(5)).unwrap();
        assert_eq!(ready, vec![true]);
        let s = accept(&l).unwrap().expect("pending connection");

        let mut f = tempfile_in(&dir);
        f.write_all(b"shared bytes").unwrap();
        send(&c, b"with fd", Some(f.as_fd()), false).unwrap();
        send(&c, b"plain", None, false).unwrap();
        let mut buf = [0u8; 4];
        let r = recv(&s, &mut buf, true).unwrap();
        assert_eq!((r.len, r.truncated, r.fd.is_some()), (4, true, true));
        assert_eq!(&buf, b"with");
        let mut buf = [0u8; 64];
        let r = recv(&s, &mut buf, true).unwrap();
        assert_eq!(&buf[..r.len], b"plain");
        assert!(r.fd.is_none() && !r.truncated && !r.extra_fds);
        assert_eq!(recv(&s, &mut buf, true).unwrap_err().kind(), io::ErrorKind::WouldBlock);

        send(&c, b"again", Some(f.as_fd()), false).unwrap();
        let r = recv(&s, &mut buf, true).unwrap();
        assert_eq!(&buf[..r.len], b"again");
        let mut got = std::fs::File::from(r.fd.expect("descriptor"));
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "shared bytes");

        drop(c);
        let r = recv(&s, &mut buf, true).unwrap();
        assert_eq!((r.len, r.fd.is_none()), (0, true), "peer closed");
        assert!(send(&s, b"x", None, true).is_err(), "no SIGPIPE, an error");
        assert!(connect(&dir.join("nothing"), Duration::from_secs(1)).is_err());
        assert!(listen(&dir.join("x".repeat(200))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_in(dir: &Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("f"))
            .unwrap()
    }
}
