//! Packet rewrites of the forwarding modes, as pure functions over a frame's bytes (the first
//! segment of an mbuf), so each can be tested alone. None allocates or panics: a frame too short
//! for a rewrite is reported (false, [`Echo::Drop`]) and left as it is.

/// EtherType of IPv4.
pub const ETHER_TYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHER_TYPE_IPV6: u16 = 0x86dd;
/// EtherType of ARP.
pub const ETHER_TYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q tag.
pub const ETHER_TYPE_VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) tag.
pub const ETHER_TYPE_QINQ: u16 = 0x88a8;
/// IP protocol numbers.
pub const IPPROTO_ICMP: u8 = 1;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// Ethernet + IPv4 (no options) + UDP.
pub const UDP_HDRS_LEN: usize = 42;

fn be16(d: &[u8], at: usize) -> u16 {
    match d.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

/// The EtherType of a frame (0 if too short).
pub fn ether_type(d: &[u8]) -> u16 {
    be16(d, 12)
}

/// Source and destination MACs of a frame.
pub fn macs(d: &[u8]) -> Option<([u8; 6], [u8; 6])> {
    let h = d.get(..12)?;
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&h[..6]);
    src.copy_from_slice(&h[6..12]);
    Some((src, dst))
}

/// Sets the destination and source MACs (mac mode); false if the frame is too short.
#[inline]
pub fn set_macs(d: &mut [u8], dst: [u8; 6], src: [u8; 6]) -> bool {
    match d.get_mut(..12) {
        Some(h) => {
            h[..6].copy_from_slice(&dst);
            h[6..12].copy_from_slice(&src);
            true
        }
        None => false,
    }
}

/// Swaps the destination and source MACs (macswap mode); false if the frame is too short.
#[inline]
pub fn swap_macs(d: &mut [u8]) -> bool {
    match d.get_mut(..12) {
        Some(h) => {
            let (a, b) = h.split_at_mut(6);
            a.swap_with_slice(b);
            true
        }
        None => false,
    }
}

/// The offset of the L3 header and its EtherType, past any VLAN/QinQ tags.
fn l3(d: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    let mut et = be16(d, off);
    while et == ETHER_TYPE_VLAN || et == ETHER_TYPE_QINQ {
        off += 4;
        et = be16(d, off);
    }
    (d.len() >= off + 2).then_some((off + 2, et))
}

fn swap_ranges(d: &mut [u8], a: usize, b: usize, len: usize) {
    for i in 0..len {
        d.swap(a + i, b + i);
    }
}

/// Swaps MACs, then IPv4/IPv6 addresses, then TCP/UDP ports (5tswap mode), as far as the frame
/// has those headers. Returns false only when the frame has no full Ethernet header.
pub fn swap_5tuple(d: &mut [u8]) -> bool {
    if d.len() < ETH_LEN || !swap_macs(d) {
        return false;
    }
    let Some((l3o, et)) = l3(d) else { return true };
    let (l4o, proto) = match et {
        ETHER_TYPE_IPV4 if d.len() >= l3o + 20 => {
            swap_ranges(d, l3o + 12, l3o + 16, 4);
            ((l3o + ((d[l3o] & 0x0f) as usize) * 4), d[l3o + 9])
        }
        ETHER_TYPE_IPV6 if d.len() >= l3o + 40 => {
            swap_ranges(d, l3o + 8, l3o + 24, 16);
            (l3o + 40, d[l3o + 6])
        }
        _ => return true,
    };
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && d.len() >= l4o + 4 {
        swap_ranges(d, l4o, l4o + 2, 2);
    }
    true
}

/// What icmpecho does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// An ICMP echo request, rewritten in place into its reply.
    IcmpReply,
    /// An ARP request, rewritten in place into its reply (testpmd answers for any address).
    ArpReply,
    /// Anything else: drop it.
    Drop,
}

/// The RFC 1071 one's-complement sum of `d` (not inverted), folded to 16 bits.
pub fn ones_sum(d: &[u8]) -> u16 {
    let mut s: u32 = 0;
    let mut chunks = d.chunks_exact(2);
    for c in &mut chunks {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The IPv4 header checksum of `hdr` (its checksum field taken as zero).
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let sum = ones_sum(hdr);
    let current = be16(hdr, 10);
    // Remove the current checksum field from the sum (one's-complement subtraction).
    let mut s = u32::from(sum) + u32::from(!current);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// icmpecho: turns an ICMP echo request into its reply (MACs swapped, IPs swapped, type 0, ICMP
/// checksum updated incrementally as DPDK does), or an ARP request into a reply from `port_mac`
/// (for any target address, as DPDK does). Anything else is [`Echo::Drop`].
pub fn icmp_echo(d: &mut [u8], port_mac: [u8; 6]) -> Echo {
    let Some((l3o, et)) = l3(d) else { return Echo::Drop };
    match et {
        ETHER_TYPE_ARP => arp_reply(d, l3o, port_mac),
        ETHER_TYPE_IPV4 => icmp_reply(d, l3o),
        _ => Echo::Drop,
    }
}

fn arp_reply(d: &mut [u8], o: usize, port_mac: [u8; 6]) -> Echo {
    // htype(2) ptype(2) hlen plen op(2) sha(6) spa(4) tha(6) tpa(4)
    if d.len() < o + 28
        || be16(d, o) != 1
        || be16(d, o + 2) != ETHER_TYPE_IPV4
        || d[o + 4] != 6
        || d[o + 5] != 4
        || be16(d, o + 6) != 1
    {
        return Echo::Drop;
    }
    // Ethernet: to the requester, from the port.
    d.copy_within(6..12, 0);
    d[6..12].copy_from_slice(&port_mac);
    // ARP: reply; target = the requester; sender = the port with the address asked for.
    d[o + 6..o + 8].copy_from_slice(&2u16.to_be_bytes());
    d.copy_within(o + 8..o + 14, o + 18);
    d[o + 8..o + 14].copy_from_slice(&port_mac);
    swap_ranges(d, o + 14, o + 24, 4);
    Echo::ArpReply
}

fn icmp_reply(d: &mut [u8], o: usize) -> Echo {
    if d.len() < o + 20 {
        return Echo::Drop;
    }
    let ihl = ((d[o] & 0x0f) as usize) * 4;
    let io = o + ihl;
    if ihl < 20 || d[o + 9] != IPPROTO_ICMP || d.len() < io + 4 || d[io] != 8 || d[io + 1] != 0 {
        return Echo::Drop;
    }
    swap_macs(d);
    let dst_is_multicast = d[o + 16] & 0xf0 == 0xe0;
    if dst_is_multicast {
        // Reply from an address of the requester's /30 other than its own (DPDK's choice), and
        // the header checksum recomputed.
        let src = u32::from_be_bytes([d[o + 12], d[o + 13], d[o + 14], d[o + 15]]);
        let new_src = if src & 3 == 1 { (src & !3) | 2 } else { (src & !3) | 1 };
        d.copy_within(o + 12..o + 16, o + 16);
        d[o + 12..o + 16].copy_from_slice(&new_src.to_be_bytes());
        d[o + 10..o + 12].copy_from_slice(&[0, 0]);
        let c = ipv4_checksum(&d[o..io]);
        d[o + 10..o + 12].copy_from_slice(&c.to_be_bytes());
    } else {
        // Swapping the addresses leaves the header checksum as it is.
        swap_ranges(d, o + 12, o + 16, 4);
    }
    // Type 8 -> 0: the checksum word (type, code) drops by 0x0800; update incrementally
    // (RFC 1624: HC' = ~(~HC + ~m + m')).
    d[io] = 0;
    let hc = be16(d, io + 2);
    let mut s = u32::from(!hc) + u32::from(!0x0800u16);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    d[io + 2..io + 4].copy_from_slice(&(!(s as u16)).to_be_bytes());
    Echo::IcmpReply
}

/// The Ethernet/IPv4/UDP headers of a generated packet (txonly, flowgen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTemplate {
    /// The 42 header bytes, IPv4 checksum filled in, UDP checksum 0 (none), as DPDK's txonly.
    pub bytes: [u8; UDP_HDRS_LEN],
}

impl UdpTemplate {
    /// Headers for a `len`-byte frame (at least [`UDP_HDRS_LEN`]; TTL 64, no IP options).
    pub fn new(
        dst: [u8; 6],
        src: [u8; 6],
        ip_src: [u8; 4],
        ip_dst: [u8; 4],
        sport: u16,
        dport: u16,
        len: u16,
    ) -> Self {
        let mut b = [0u8; UDP_HDRS_LEN];
        b[..6].copy_from_slice(&dst);
        b[6..12].copy_from_slice(&src);
        b[12..14].copy_from_slice(&ETHER_TYPE_IPV4.to_be_bytes());
        let ip_len = len.saturating_sub(ETH_LEN as u16);
        let ip = &mut b[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&ip_src);
        ip[16..20].copy_from_slice(&ip_dst);
        let c = ipv4_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let udp = &mut b[34..42];
        udp[..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        udp[4..6].copy_from_slice(&ip_len.saturating_sub(20).to_be_bytes());
        UdpTemplate { bytes: b }
    }

    /// Writes the headers into the start of `d` (false if it is shorter than the headers).
    #[inline]
    pub fn write(&self, d: &mut [u8]) -> bool {
        match d.get_mut(..UDP_HDRS_LEN) {
            Some(h) => {
                h.copy_from_slice(&self.bytes);
                true
            }
            None => false,
        }
    }
}

/// Sets the UDP source port of a frame written from a [`UdpTemplate`] (txonly multi-flow: the
/// UDP checksum is 0, so nothing else changes).
#[inline]
pub fn set_udp_sport(d: &mut [u8], port: u16) {
    if let Some(p) = d.get_mut(34..36) {
        p.copy_from_slice(&port.to_be_bytes());
    }
}

/// Sets the IPv4 destination of a frame written from a [`UdpTemplate`] and recomputes the header
/// checksum (flowgen).
#[inline]
pub fn set_ipv4_dst(d: &mut [u8], dst: u32) {
    if let Some(ip) = d.get_mut(14..34) {
        ip[16..20].copy_from_slice(&dst.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = ipv4_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An independent RFC 1071 checksum: the sum over `b` with checksum included must be 0xffff.
    pub(crate) fn verifies(b: &[u8]) -> bool {
        let mut s: u64 = 0;
        for (i, x) in b.iter().enumerate() {
            s += if i % 2 == 0 { (*x as u64) << 8 } else { *x as u64 };
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s == 0xffff
    }

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

    /// Ethernet + IPv4 + UDP/TCP/ICMP frame with given addresses; valid IP checksum.
    pub(crate) fn ipv4_frame(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20];
        f[..6].copy_from_slice(&B);
        f[6..12].copy_from_slice(&A);
        f[12..14].copy_from_slice(&ETHER_TYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        let c = ipv4_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(l4);
        f
    }

    /// An ICMP echo request with a valid checksum.
    pub(crate) fn echo_request(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07];
        icmp.extend_from_slice(payload);
        let c = !ones_sum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        ipv4_frame(IPPROTO_ICMP, src, dst, &icmp)
    }

    #[test]
    fn mac_rewrites() {
        let mut f = ipv4_frame(IPPROTO_UDP, [1, 1, 1, 1], [2, 2, 2, 2], &[0; 8]);
        let orig = f.clone();
        let (p, q) = ([9u8; 6], [7u8; 6]);
        assert!(set_macs(&mut f, p, q));
        assert_eq!((&f[..6], &f[6..12]), (&p[..], &q[..]));
        assert_eq!(f[12..], orig[12..]);
        let mut f = orig.clone();
        assert!(swap_macs(&mut f));
        assert_eq!((&f[..6], &f[6..12]), (&A[..], &B[..]));
        assert_eq!(f[12..], orig[12..]);
        assert!(swap_macs(&mut f));
        assert_eq!(f, orig);
        let mut short = [0u8; 11];
        assert!(!set_macs(&mut short, p, q) && !swap_macs(&mut short));
        assert_eq!(short, [0; 11]);
    }

    #[test]
    fn five_tuple_swap_of_ipv4_udp_and_tcp_and_ipv6() {
        let l4 = [0x04, 0xd2, 0x16, 0x2e, 0, 8, 0, 0]; // 1234 -> 5678
        let mut f = ipv4_frame(IPPROTO_UDP, [10, 0, 0, 1], [10, 0, 0, 2], &l4);
        let ip_ck = f[24..26].to_vec();
        assert!(swap_5tuple(&mut f));
        assert_eq!((&f[..6], &f[6..12]), (&A[..], &B[..]));
        assert_eq!((&f[26..30], &f[30..34]), (&[10, 0, 0, 2][..], &[10, 0, 0, 1][..]));
        assert_eq!(&f[34..38], &[0x16, 0x2e, 0x04, 0xd2]);
        assert_eq!(f[24..26], ip_ck[..], "swapping addresses keeps the IP checksum valid");
        assert!(verifies(&f[14..34]));
        let mut t = vec![0u8; 20];
        t[..4].copy_from_slice(&[0, 80, 0xc3, 0x50]);
        let mut f = ipv4_frame(IPPROTO_TCP, [1, 2, 3, 4], [5, 6, 7, 8], &t);
        swap_5tuple(&mut f);
        assert_eq!(&f[34..38], &[0xc3, 0x50, 0, 80]);
        assert_eq!((&f[26..30], &f[30..34]), (&[5, 6, 7, 8][..], &[1, 2, 3, 4][..]));
        // IPv6 behind a VLAN tag, UDP.
        let mut f = vec![0u8; 14 + 4 + 40 + 8];
        f[..6].copy_from_slice(&B);
        f[6..12].copy_from_slice(&A);
        f[12..14].copy_from_slice(&ETHER_TYPE_VLAN.to_be_bytes());
        f[16..18].copy_from_slice(&ETHER_TYPE_IPV6.to_be_bytes());
        let ip = 18;
        f[ip] = 0x60;
        f[ip + 6] = IPPROTO_UDP;
        for i in 0..16 {
            f[ip + 8 + i] = 0x10 + i as u8;
            f[ip + 24 + i] = 0x40 + i as u8;
        }
        f[ip + 40..ip + 44].copy_from_slice(&[0, 1, 0, 2]);
        swap_5tuple(&mut f);
        assert_eq!(f[ip + 8], 0x40);
        assert_eq!(f[ip + 24 + 15], 0x1f);
        assert_eq!(&f[ip + 40..ip + 44], &[0, 2, 0, 1]);
        // Not IP: only the MACs; truncated: nothing beyond what is there.
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&B);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[30] = 7;
        assert!(swap_5tuple(&mut f));
        assert_eq!(&f[6..12], &B[..]);
        assert_eq!(f[30], 7);
        let mut f = ipv4_frame(IPPROTO_UDP, [1, 1, 1, 1], [2, 2, 2, 2], &[]);
        f.truncate(30);
        assert!(swap_5tuple(&mut f));
        assert_eq!(&f[26..30], &[1, 1, 1, 1], "a truncated IP header is left alone");
        assert!(!swap_5tuple(&mut [0u8; 13]));
    }

    #[test]
    fn icmp_echo_replies_carry_correct_checksums() {
        for payload_len in [0usize, 1, 31, 56, 1000] {
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
            let mut f = echo_request([192, 168, 1, 10], [192, 168, 1, 20], &payload);
            let req = f.clone();
            assert_eq!(icmp_echo(&mut f, [0xee; 6]), Echo::IcmpReply);
            assert_eq!((&f[..6], &f[6..12]), (&A[..], &B[..]), "MACs swapped");
            assert_eq!((&f[26..30], &f[30..34]), (&req[30..34], &req[26..30]), "IPs swapped");
            assert_eq!((f[34], f[35]), (0, 0), "echo reply");
            assert_eq!(f[38..], req[38..], "identifier, sequence and payload kept");
            assert!(verifies(&f[14..34]), "IP header checksum");
            assert!(verifies(&f[34..]), "ICMP checksum, payload {payload_len}");
            // The incremental update equals a full recomputation.
            let mut full = f[34..].to_vec();
            full[2..4].copy_from_slice(&[0, 0]);
            let c = !ones_sum(&full);
            assert_eq!(&f[36..38], &c.to_be_bytes());
        }
    }

    #[test]
    fn icmp_echo_to_multicast_answers_from_another_address() {
        let mut f = echo_request([10, 0, 0, 5], [224, 0, 0, 1], b"ping");
        assert_eq!(icmp_echo(&mut f, [0xee; 6]), Echo::IcmpReply);
        assert_eq!(&f[30..34], &[10, 0, 0, 5]);
        assert_eq!(&f[26..30], &[10, 0, 0, 6], "5 is 01 in its /30: answer from 10 (..6)");
        assert!(verifies(&f[14..34]));
        assert!(verifies(&f[34..]));
    }

    #[test]
    fn icmp_echo_drops_what_is_not_a_request() {
        let mut reply = echo_request([1, 1, 1, 1], [2, 2, 2, 2], b"x");
        reply[34] = 0;
        assert_eq!(icmp_echo(&mut reply, A), Echo::Drop);
        let mut udp = ipv4_frame(IPPROTO_UDP, [1, 1, 1, 1], [2, 2, 2, 2], &[0; 8]);
        assert_eq!(icmp_echo(&mut udp, A), Echo::Drop);
        let mut short = echo_request([1, 1, 1, 1], [2, 2, 2, 2], b"");
        short.truncate(36);
        assert_eq!(icmp_echo(&mut short, A), Echo::Drop);
        assert_eq!(icmp_echo(&mut [0u8; 10], A), Echo::Drop);
    }

    #[test]
    fn arp_requests_get_replies_from_the_port() {
        let requester = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let port = [0x00, 0x15, 0x5d, 0, 0, 1];
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&requester);
        f.extend_from_slice(&ETHER_TYPE_ARP.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&requester);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 2]);
        f.resize(60, 0);
        assert_eq!(icmp_echo(&mut f, port), Echo::ArpReply);
        assert_eq!(&f[..6], &requester);
        assert_eq!(&f[6..12], &port);
        assert_eq!(&f[20..22], &[0, 2], "op reply");
        assert_eq!(&f[22..28], &port, "sender hw = port");
        assert_eq!(&f[28..32], &[10, 0, 0, 2], "sender ip = the address asked for");
        assert_eq!(&f[32..38], &requester, "target hw = requester");
        assert_eq!(&f[38..42], &[10, 0, 0, 1]);
        let mut reply = f.clone();
        assert_eq!(icmp_echo(&mut reply, port), Echo::Drop, "a reply is not answered");
    }

    #[test]
    fn generated_udp_headers_are_valid() {
        let t = UdpTemplate::new(B, A, [198, 18, 0, 1], [198, 18, 0, 2], 9, 9, 64);
        let mut f = vec![0u8; 64];
        assert!(t.write(&mut f));
        assert_eq!(ether_type(&f), ETHER_TYPE_IPV4);
        assert_eq!(macs(&f), Some((A, B)));
        assert_eq!(be16(&f, 16), 50, "IP total length");
        assert_eq!(be16(&f, 38), 30, "UDP length");
        assert!(verifies(&f[14..34]));
        set_udp_sport(&mut f, 0xc005);
        assert_eq!(be16(&f, 34), 0xc005);
        set_ipv4_dst(&mut f, u32::from_be_bytes([10, 253, 0, 7]));
        assert_eq!(&f[30..34], &[10, 253, 0, 7]);
        assert!(verifies(&f[14..34]));
        assert!(!t.write(&mut [0u8; 41]));
    }
}
