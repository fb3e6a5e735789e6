//! RSS: NDIS hash-type bits, the 40-byte default keys, and the Toeplitz hash as a pure
//! function, so the device model and the tests compute the same hash the driver expects.
//!
//! Spec: §8 (Toeplitz only, 40-byte key, hash types in `rx_hashtype`, L3/L4 masks, indirection
//! table of RQ object handles, `hash & (size - 1)` indexing). Verified against Microsoft's
//! "Verifying the RSS Hash Calculation" table (see the tests).

use core::net::{Ipv4Addr, Ipv6Addr};

/// Toeplitz key size in bytes (`MANA_HASH_KEY_SIZE`).
pub const MANA_HASH_KEY_SIZE: usize = 40;

/// NDIS hash type: IPv4 2-tuple.
pub const NDIS_HASH_IPV4: u16 = 1 << 0;
/// NDIS hash type: TCP/IPv4 4-tuple.
pub const NDIS_HASH_TCP_IPV4: u16 = 1 << 1;
/// NDIS hash type: UDP/IPv4 4-tuple.
pub const NDIS_HASH_UDP_IPV4: u16 = 1 << 2;
/// NDIS hash type: IPv6 2-tuple.
pub const NDIS_HASH_IPV6: u16 = 1 << 3;
/// NDIS hash type: TCP/IPv6 4-tuple.
pub const NDIS_HASH_TCP_IPV6: u16 = 1 << 4;
/// NDIS hash type: UDP/IPv6 4-tuple.
pub const NDIS_HASH_UDP_IPV6: u16 = 1 << 5;
/// NDIS hash type: IPv6 with extension headers.
pub const NDIS_HASH_IPV6_EX: u16 = 1 << 6;
/// NDIS hash type: TCP/IPv6 with extension headers.
pub const NDIS_HASH_TCP_IPV6_EX: u16 = 1 << 7;
/// NDIS hash type: UDP/IPv6 with extension headers.
pub const NDIS_HASH_UDP_IPV6_EX: u16 = 1 << 8;
/// All L3 (2-tuple) hash types: 0x049.
pub const MANA_HASH_L3: u16 = NDIS_HASH_IPV4 | NDIS_HASH_IPV6 | NDIS_HASH_IPV6_EX;
/// All L4 (4-tuple) hash types: 0x1B6.
pub const MANA_HASH_L4: u16 = NDIS_HASH_TCP_IPV4
    | NDIS_HASH_UDP_IPV4
    | NDIS_HASH_TCP_IPV6
    | NDIS_HASH_UDP_IPV6
    | NDIS_HASH_TCP_IPV6_EX
    | NDIS_HASH_UDP_IPV6_EX;
/// The six hash types newest LNX requests (`rss_hash_types = 0x3F`).
pub const MANA_HASH_DEFAULT_TYPES: u16 = 0x3F;

/// The default RSS key of this project: the DPDK MANA PMD's default key (§8).
pub const MANA_DEFAULT_RSS_KEY: [u8; MANA_HASH_KEY_SIZE] = [
    0x2c, 0xc6, 0x81, 0xd1, 0x5b, 0xdb, 0xf4, 0xf7, 0xfc, 0xa2, 0x83, 0x19, 0xdb, 0x1a, 0x3e, 0x94,
    0x6b, 0x9e, 0x38, 0xd9, 0x2c, 0x9c, 0x03, 0xd1, 0xad, 0x99, 0x44, 0xa7, 0xd9, 0x56, 0x3d, 0x59,
    0x06, 0x3c, 0x25, 0xf3, 0xfc, 0x1f, 0xdc, 0x2a,
];

/// Microsoft's RSS verification key (NDIS "Verifying the RSS Hash Calculation").
pub const MS_RSS_VERIFICATION_KEY: [u8; MANA_HASH_KEY_SIZE] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Toeplitz hash of `input` with `key`: for every set bit `i` of the input (MSB first), XOR in
/// the 32 key bits starting at bit `i`. Key bits beyond the end of `key` count as 0, so any
/// input length is accepted (a 40-byte key covers inputs up to 36 bytes, the IPv6 4-tuple).
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    let kb = |i: usize| key.get(i).copied().unwrap_or(0);
    let mut window = u32::from_be_bytes([kb(0), kb(1), kb(2), kb(3)]);
    let mut hash = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        let next = kb(i + 4);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// Toeplitz hash of an IPv4 flow: input = src address, dst address, then (if `ports` is given)
/// src port, dst port, all in network byte order.
pub fn rss_hash_ipv4(key: &[u8], src: Ipv4Addr, dst: Ipv4Addr, ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&src.octets());
    input[4..8].copy_from_slice(&dst.octets());
    match ports {
        Some((sp, dp)) => {
            input[8..10].copy_from_slice(&sp.to_be_bytes());
            input[10..12].copy_from_slice(&dp.to_be_bytes());
            toeplitz_hash(key, &input)
        }
        None => toeplitz_hash(key, &input[..8]),
    }
}

/// Toeplitz hash of an IPv6 flow: input = src address, dst address, then (if `ports` is given)
/// src port, dst port, all in network byte order.
pub fn rss_hash_ipv6(key: &[u8], src: Ipv6Addr, dst: Ipv6Addr, ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 36];
    input[..16].copy_from_slice(&src.octets());
    input[16..32].copy_from_slice(&dst.octets());
    match ports {
        Some((sp, dp)) => {
            input[32..34].copy_from_slice(&sp.to_be_bytes());
            input[34..36].copy_from_slice(&dp.to_be_bytes());
            toeplitz_hash(key, &input)
        }
        None => toeplitz_hash(key, &input[..32]),
    }
}

/// L4 protocol used to pick an NDIS hash type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RssL4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Anything else (hash on the 2-tuple).
    Other,
}

/// The single NDIS hash-type bit reported for an IPv4 (`is_ipv6 == false`) or IPv6 packet
/// hashed on its 4-tuple (TCP/UDP) or 2-tuple (other), when `enabled` (a mask of
/// `NDIS_HASH_*`) allows it; 0 if no enabled type applies.
pub const fn ndis_hash_type(is_ipv6: bool, l4: RssL4, enabled: u16) -> u16 {
    let (l4_bit, l3_bit) = match (is_ipv6, l4) {
        (false, RssL4::Tcp) => (NDIS_HASH_TCP_IPV4, NDIS_HASH_IPV4),
        (false, RssL4::Udp) => (NDIS_HASH_UDP_IPV4, NDIS_HASH_IPV4),
        (false, RssL4::Other) => (0, NDIS_HASH_IPV4),
        (true, RssL4::Tcp) => (NDIS_HASH_TCP_IPV6, NDIS_HASH_IPV6),
        (true, RssL4::Udp) => (NDIS_HASH_UDP_IPV6, NDIS_HASH_IPV6),
        (true, RssL4::Other) => (0, NDIS_HASH_IPV6),
    };
    if l4_bit & enabled != 0 {
        l4_bit
    } else if l3_bit & enabled != 0 {
        l3_bit
    } else {
        0
    }
}

/// Indirection-table index of `hash` for a table of `len` entries: `hash & (len - 1)` for a
/// power of two (§8), `hash % len` otherwise, 0 for an empty table.
#[inline]
pub const fn indirection_index(hash: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else if len.is_power_of_two() {
        hash as usize & (len - 1)
    } else {
        hash as usize % len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row of Microsoft's table: (destination, dst port, source, src port,
    /// 2-tuple hash, 4-tuple hash).
    type Ipv4Row = ([u8; 4], u16, [u8; 4], u16, u32, u32);

    /// Microsoft "Verifying the RSS Hash Calculation", IPv4 rows.
    const IPV4_ROWS: [Ipv4Row; 5] = [
        ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e_8fc2, 0x51cc_c178),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718_262a, 0xc626_b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0_a5de, 0x5c2b_394a),
        ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x8298_9176, 0xafc7_327f),
        ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d18_09c5, 0x10e8_28a2),
    ];

    #[test]
    fn toeplitz_microsoft_ipv4_vectors() {
        for (dst, dport, src, sport, h2, h4) in IPV4_ROWS {
            let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            assert_eq!(rss_hash_ipv4(&MS_RSS_VERIFICATION_KEY, s, d, None), h2, "IPv4 {s} -> {d}");
            assert_eq!(
                rss_hash_ipv4(&MS_RSS_VERIFICATION_KEY, s, d, Some((sport, dport))),
                h4,
                "TCP {s} -> {d}"
            );
        }
    }

    #[test]
    fn toeplitz_microsoft_ipv6_vectors() {
        // (destination, dst port, source, src port, IPv6 hash, TCP/IPv6 hash).
        let rows: [(&str, u16, &str, u16, u32, u32); 3] = [
            ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc1_8cd5, 0x4020_7d3d),
            ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c_461c, 0xdde5_1bbf),
            (
                "fe80::200:f8ff:fe21:67cf",
                38024,
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                0x4b61_e985,
                0x02d1_feef,
            ),
        ];
        for (dst, dport, src, sport, h2, h4) in rows {
            let s: Ipv6Addr = src.parse().unwrap();
            let d: Ipv6Addr = dst.parse().unwrap();
            assert_eq!(rss_hash_ipv6(&MS_RSS_VERIFICATION_KEY, s, d, None), h2, "IPv6 {s} -> {d}");
            assert_eq!(
                rss_hash_ipv6(&MS_RSS_VERIFICATION_KEY, s, d, Some((sport, dport))),
                h4,
                "TCP {s} -> {d}"
            );
        }
    }

    #[test]
    fn toeplitz_raw_input_and_short_keys() {
        // The first IPv4 row as raw bytes: 66.9.149.187, 161.142.100.80, 2794, 1766.
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz_hash(&MS_RSS_VERIFICATION_KEY, &input), 0x51cc_c178);
        // A single set MSB selects the first 32 key bits; the LSB of byte 0 selects bits 7..39.
        assert_eq!(toeplitz_hash(&MS_RSS_VERIFICATION_KEY, &[0x80]), 0x6d5a_56da);
        assert_eq!(toeplitz_hash(&MS_RSS_VERIFICATION_KEY, &[0x01]), 0xad2b_6d12);
        assert_eq!(toeplitz_hash(&MS_RSS_VERIFICATION_KEY, &[]), 0);
        assert_eq!(toeplitz_hash(&MS_RSS_VERIFICATION_KEY, &[0; 36]), 0);
        // Missing key bits read as zero instead of panicking.
        assert_eq!(toeplitz_hash(&[0xff], &[0x80, 0x00]), 0xff00_0000);
        assert_eq!(toeplitz_hash(&[], &[0xff; 64]), 0);
        // The project default key (DPDK's) hashes the same tuple differently from the MS key.
        let h = rss_hash_ipv4(
            &MANA_DEFAULT_RSS_KEY,
            Ipv4Addr::new(66, 9, 149, 187),
            Ipv4Addr::new(161, 142, 100, 80),
            None,
        );
        assert_eq!(h, toeplitz_hash(&MANA_DEFAULT_RSS_KEY, &input[..8]));
        assert_ne!(h, 0x323e_8fc2);
    }

    #[test]
    fn hash_type_bits_and_indexing() {
        assert_eq!(MANA_HASH_L3, 0x049);
        assert_eq!(MANA_HASH_L4, 0x1B6);
        assert_eq!(MANA_HASH_L3 | MANA_HASH_L4, 0x1FF);
        assert_eq!(ndis_hash_type(false, RssL4::Tcp, MANA_HASH_DEFAULT_TYPES), NDIS_HASH_TCP_IPV4);
        assert_eq!(ndis_hash_type(true, RssL4::Udp, MANA_HASH_DEFAULT_TYPES), NDIS_HASH_UDP_IPV6);
        assert_eq!(ndis_hash_type(true, RssL4::Other, MANA_HASH_DEFAULT_TYPES), NDIS_HASH_IPV6);
        assert_eq!(
            ndis_hash_type(false, RssL4::Udp, NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4),
            NDIS_HASH_IPV4
        );
        assert_eq!(ndis_hash_type(false, RssL4::Tcp, NDIS_HASH_IPV6), 0);
        assert_eq!(indirection_index(0x51cc_c178, 64), 0x38);
        assert_eq!(indirection_index(0x51cc_c178, 512), 0x178);
        assert_eq!(indirection_index(10, 3), 1);
        assert_eq!(indirection_index(10, 0), 0);
    }
}
