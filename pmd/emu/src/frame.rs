//! Ethernet frame parsing and the offloads the device applies: VLAN tag insertion and removal,
//! IPv4 header and TCP/UDP checksums (computed on TX, verified on RX), and the flow tuple RSS
//! hashes.
//!
//! Frames are device-private copies (`&mut [u8]` of the device's own buffers), never driver
//! memory.

use gdma_defs::RssL4;

/// Ethertype of IPv4.
pub const ETH_P_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// Ethertype of an 802.1Q tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// 802.1Q tag length.
pub const VLAN_HLEN: usize = 4;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Where the layers of a frame are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layers {
    /// Offset of the L3 header (after any VLAN tag).
    pub l3: usize,
    /// IP version: 4, 6, or 0 for anything else.
    pub ip: u8,
    /// Offset of the L4 header (0 if none was found).
    pub l4: usize,
    /// L4 protocol number (TCP, UDP, other).
    pub proto: u8,
    /// The IPv4 packet is a fragment (no L4 header to trust).
    pub fragment: bool,
    /// L3 total length claimed by the IP header, from the L3 offset (0 if unknown).
    pub l3_len: usize,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parses Ethernet (with at most one 802.1Q tag), IPv4 or IPv6 (no extension headers), and finds
/// TCP/UDP. Never reads past the frame.
pub fn parse(f: &[u8]) -> Layers {
    let mut l = Layers::default();
    if f.len() < ETH_HLEN {
        return l;
    }
    let (mut ety, mut l3) = (be16(f, 12), ETH_HLEN);
    if ety == ETH_P_8021Q && f.len() >= ETH_HLEN + VLAN_HLEN {
        ety = be16(f, 16);
        l3 += VLAN_HLEN;
    }
    l.l3 = l3;
    match ety {
        ETH_P_IPV4 if f.len() >= l3 + 20 && f[l3] >> 4 == 4 => {
            let ihl = (f[l3] & 0xf) as usize * 4;
            if ihl < 20 || f.len() < l3 + ihl {
                return l;
            }
            l.ip = 4;
            l.proto = f[l3 + 9];
            l.l3_len = be16(f, l3 + 2) as usize;
            l.fragment = be16(f, l3 + 6) & 0x3fff != 0;
            l.l4 = l3 + ihl;
        }
        ETH_P_IPV6 if f.len() >= l3 + 40 && f[l3] >> 4 == 6 => {
            l.ip = 6;
            l.proto = f[l3 + 6];
            l.l3_len = 40 + be16(f, l3 + 4) as usize;
            l.l4 = l3 + 40;
        }
        _ => {}
    }
    let l4_min = match l.proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        _ => 0,
    };
    if l.ip == 0 || l.fragment || l4_min == 0 || f.len() < l.l4 + l4_min {
        l.l4 = 0;
        if l.ip == 0 {
            l.proto = 0;
        }
    }
    l
}

/// The L4 kind RSS hashes with.
pub fn rss_l4(l: &Layers) -> RssL4 {
    match (l.l4 != 0, l.proto) {
        (true, IPPROTO_TCP) => RssL4::Tcp,
        (true, IPPROTO_UDP) => RssL4::Udp,
        _ => RssL4::Other,
    }
}

/// The RSS input of a parsed frame: source and destination address, then ports when hashing an
/// L4 tuple. Returns the length used (0 when the frame has no IP header).
pub fn rss_input(f: &[u8], l: &Layers, with_ports: bool, out: &mut [u8; 36]) -> usize {
    let n = match l.ip {
        4 => {
            out[..8].copy_from_slice(&f[l.l3 + 12..l.l3 + 20]);
            8
        }
        6 => {
            out[..32].copy_from_slice(&f[l.l3 + 8..l.l3 + 40]);
            32
        }
        _ => return 0,
    };
    if with_ports && l.l4 != 0 {
        out[n..n + 4].copy_from_slice(&f[l.l4..l.l4 + 4]);
        return n + 4;
    }
    n
}

/// Ones'-complement sum of `data` as little-endian 64-bit words (a zero-padded tail), with
/// end-around carry, added to `acc`.
///
/// 2^16 = 1 modulo 0xffff, so 64-bit words fold to the same 16-bit sum as 16-bit ones; and a
/// ones'-complement sum of byte-swapped words is the byte-swapped sum (RFC 1071, "byte order
/// independence"), so [`finish`] turns the result into the network-order sum. `data` must start
/// at an even offset of what is being checksummed (every caller's pieces do).
#[inline(always)]
fn raw_sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        acc = s + carry as u64;
    }
    // The tail (under 8 bytes) as 4-, 2- and 1-byte pieces at their little-endian positions in
    // a zero-padded word; the pieces' sum is below 2^56, so adding it to `acc` needs one carry.
    let rest = chunks.remainder();
    let mut tail = 0u64;
    let mut at = 0;
    if rest.len() >= 4 {
        tail = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        at = 4;
    }
    if rest.len() - at >= 2 {
        tail |= (u16::from_le_bytes([rest[at], rest[at + 1]]) as u64) << (8 * at);
        at += 2;
    }
    if rest.len() > at {
        tail |= (rest[at] as u64) << (8 * at);
    }
    let (s, carry) = acc.overflowing_add(tail);
    s + carry as u64
}

/// Folds a [`raw_sum`] to the 16-bit ones'-complement sum in network order.
#[inline(always)]
fn finish(acc: u64) -> u16 {
    // 64 -> 33 -> 32 bits, then 32 -> 17 -> 16: each step keeps the value modulo 0xffff.
    let a = (acc & 0xffff_ffff) + (acc >> 32);
    let a = (a & 0xffff_ffff) + (a >> 32);
    let b = (a & 0xffff) + (a >> 16);
    let b = (b & 0xffff) + (b >> 16);
    (b as u16).swap_bytes()
}

/// Ones'-complement sum of `data` (big-endian 16-bit words) added to `sum`; the result is
/// folded to 16 bits (in a `u32`).
#[inline]
pub fn sum16(sum: u32, data: &[u8]) -> u32 {
    fold(finish(raw_sum(0, data)) as u32 + sum) as u32
}

/// Folds a 32-bit ones'-complement sum to 16 bits.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The IPv4 header checksum of the header at `l3` (the checksum field itself is included; a
/// correct header sums to 0xffff).
pub fn ipv4_header_sum(f: &[u8], l3: usize) -> u16 {
    let ihl = (f[l3] & 0xf) as usize * 4;
    finish(raw_sum(0, &f[l3..l3 + ihl]))
}

/// The L4 length of a parsed IP packet (from the IP header, clamped to the frame).
fn l4_len(f: &[u8], l: &Layers) -> usize {
    let end = (l.l3 + l.l3_len).min(f.len());
    end.saturating_sub(l.l4)
}

/// Sum of the pseudo-header (without the L4 length folded in twice: the caller adds data).
fn pseudo_sum(f: &[u8], l: &Layers, len: usize) -> u32 {
    let addrs = match l.ip {
        4 => &f[l.l3 + 12..l.l3 + 20],
        _ => &f[l.l3 + 8..l.l3 + 40],
    };
    sum16(0, addrs) + l.proto as u32 + len as u32
}

/// Offset of the L4 checksum field.
fn l4_csum_off(l: &Layers) -> usize {
    l.l4 + if l.proto == IPPROTO_TCP { 16 } else { 6 }
}

/// Whether the L4 checksum of a parsed TCP/UDP packet is right (a UDP/IPv4 checksum of 0 means
/// "none" and counts as right).
pub fn l4_checksum_ok(f: &[u8], l: &Layers) -> bool {
    let len = l4_len(f, l);
    if l.proto == IPPROTO_UDP && l.ip == 4 && be16(f, l4_csum_off(l)) == 0 {
        return true;
    }
    // One accumulator over the pseudo-header addresses and the L4 bytes; protocol and length
    // (network-order words) join it byte-swapped, as the raw sum is little-endian.
    let addrs = match l.ip {
        4 => &f[l.l3 + 12..l.l3 + 20],
        _ => &f[l.l3 + 8..l.l3 + 40],
    };
    let words = ((l.proto as u16).swap_bytes() as u64) + ((len as u16).swap_bytes() as u64);
    finish(raw_sum(raw_sum(words, addrs), &f[l.l4..l.l4 + len])) == 0xffff
}

/// TX: computes the IPv4 header checksum in place.
pub fn fill_ipv4_checksum(f: &mut [u8], l: &Layers) {
    let at = l.l3 + 10;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !ipv4_header_sum(f, l.l3);
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// TX: completes an L4 checksum the driver seeded with the pseudo-header sum (what the
/// hardware does: it sums the L4 header and data, the seed included, and stores the complement).
pub fn fill_l4_checksum(f: &mut [u8], l: &Layers) {
    let len = l4_len(f, l);
    let at = l4_csum_off(l);
    let c = !fold(sum16(0, &f[l.l4..l.l4 + len]));
    let c = if c == 0 && l.proto == IPPROTO_UDP { 0xffff } else { c };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// The pseudo-header sum a driver seeds the L4 checksum field with (for tests and drivers).
pub fn pseudo_header_seed(f: &[u8], l: &Layers) -> u16 {
    fold(pseudo_sum(f, l, l4_len(f, l)))
}

/// TX: inserts an 802.1Q tag with `tci` after the MAC addresses. `len` is the frame length in
/// `buf`; returns the new length, or `None` if `buf` has no room or the frame is too short.
pub fn insert_vlan(buf: &mut [u8], len: usize, tci: u16) -> Option<usize> {
    if len < 12 || buf.len() < len + VLAN_HLEN {
        return None;
    }
    buf.copy_within(12..len, 12 + VLAN_HLEN);
    buf[12..14].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
    buf[14..16].copy_from_slice(&tci.to_be_bytes());
    Some(len + VLAN_HLEN)
}

/// RX: removes an 802.1Q tag; returns the new length and the TCI, or `None` if untagged.
pub fn strip_vlan(buf: &mut [u8], len: usize) -> Option<(usize, u16)> {
    if len < ETH_HLEN + VLAN_HLEN || be16(buf, 12) != ETH_P_8021Q {
        return None;
    }
    let tci = be16(buf, 14);
    buf.copy_within(12 + VLAN_HLEN..len, 12);
    Some((len - VLAN_HLEN, tci))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an Ethernet/IPv4/UDP or TCP frame with `payload` bytes; checksums correct.
    pub(crate) fn ipv4_frame(
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        payload: usize,
    ) -> Vec<u8> {
        let l4h = if proto == IPPROTO_TCP { 20 } else { 8 };
        let total = 20 + l4h + payload;
        let mut f = vec![0u8; ETH_HLEN + total];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
        let ip = &mut f[ETH_HLEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let l4 = &mut ip[20..];
        l4[..2].copy_from_slice(&sport.to_be_bytes());
        l4[2..4].copy_from_slice(&dport.to_be_bytes());
        if proto == IPPROTO_TCP {
            l4[12] = 5 << 4;
        } else {
            l4[4..6].copy_from_slice(&((l4h + payload) as u16).to_be_bytes());
        }
        for (i, b) in l4[l4h..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let l = parse(&f);
        fill_ipv4_checksum(&mut f, &l);
        let seed = pseudo_header_seed(&f, &l);
        let at = l4_csum_off(&l);
        f[at..at + 2].copy_from_slice(&seed.to_be_bytes());
        fill_l4_checksum(&mut f, &l);
        f
    }

    /// Independent checksum: RFC 1071 over explicit pseudo-header bytes.
    fn rfc1071(bytes: &[u8]) -> u16 {
        let mut sum = 0u64;
        for c in bytes.chunks(2) {
            let w =
                if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { (c[0] as u16) << 8 };
            sum += w as u64;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn checksums_match_an_independent_rfc1071_computation() {
        for proto in [IPPROTO_UDP, IPPROTO_TCP] {
            for payload in [0, 1, 18, 1000] {
                let f = ipv4_frame(proto, [10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, payload);
                let l = parse(&f);
                assert_eq!(l.ip, 4);
                assert!(l4_checksum_ok(&f, &l));
                assert_eq!(rfc1071(&f[14..34]), 0, "IPv4 header sums to zero");
                let l4 = &f[34..];
                let mut pseudo = Vec::new();
                pseudo.extend_from_slice(&f[26..34]);
                pseudo.extend_from_slice(&[0, proto]);
                pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                pseudo.extend_from_slice(l4);
                assert_eq!(rfc1071(&pseudo), 0, "proto {proto} payload {payload}");
                let mut bad = f.clone();
                *bad.last_mut().unwrap() ^= 0x55;
                if payload > 0 {
                    assert!(!l4_checksum_ok(&bad, &parse(&bad)));
                }
            }
        }
    }

    #[test]
    fn the_word_at_a_time_sum_matches_rfc1071_for_every_length_and_carry_pattern() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300 {
            for fill in [None, Some(0xffu8), Some(0x00), Some(0x80)] {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        fill.unwrap_or(x as u8)
                    })
                    .collect();
                let want = {
                    let mut sum = 0u64;
                    for c in data.chunks(2) {
                        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
                    }
                    while sum >> 16 != 0 {
                        sum = (sum & 0xffff) + (sum >> 16);
                    }
                    sum as u32
                };
                let got = sum16(0, &data);
                // 0x0000 and 0xffff are the same ones'-complement value (only all-zero data
                // has the sum +0 in RFC 1071's arithmetic).
                assert!(
                    got == want || (got ^ want == 0xffff && (got == 0 || want == 0)),
                    "len {len} fill {fill:?}: {got:#x} vs {want:#x}"
                );
            }
        }
    }

    #[test]
    fn vlan_insert_and_strip_round_trip() {
        let f = ipv4_frame(IPPROTO_UDP, [1, 2, 3, 4], [5, 6, 7, 8], 1, 2, 10);
        let mut buf = f.clone();
        buf.resize(f.len() + 4, 0);
        let n = insert_vlan(&mut buf, f.len(), 0x2005).unwrap();
        assert_eq!(n, f.len() + 4);
        let l = parse(&buf[..n]);
        assert_eq!((l.l3, l.ip, l.proto), (18, 4, IPPROTO_UDP));
        assert!(l4_checksum_ok(&buf[..n], &l), "tag does not change L3/L4");
        let (m, tci) = strip_vlan(&mut buf, n).unwrap();
        assert_eq!((m, tci), (f.len(), 0x2005));
        assert_eq!(&buf[..m], &f[..]);
        assert_eq!(strip_vlan(&mut buf, m), None);
    }

    #[test]
    fn parsing_never_reads_past_short_or_odd_frames() {
        for len in 0..80 {
            let mut f = ipv4_frame(IPPROTO_TCP, [1; 4], [2; 4], 3, 4, 40);
            f.truncate(len);
            let l = parse(&f);
            if l.l4 != 0 {
                assert!(f.len() >= l.l4 + 20);
            }
            let mut inp = [0u8; 36];
            let _ = rss_input(&f, &l, true, &mut inp);
        }
        let mut frag = ipv4_frame(IPPROTO_UDP, [1; 4], [2; 4], 3, 4, 8);
        frag[14 + 6] = 0x20; // more fragments
        let l = parse(&frag);
        assert!(l.fragment);
        assert_eq!(rss_l4(&l), RssL4::Other);
    }
}
