//! RSS against Microsoft's "Verifying the RSS Hash Calculation" table: frames built from the
//! table's rows cross a pair to a vport with several RQs; each RX CQE must carry the table's
//! hash, a single NDIS hash-type bit, and the frame must land in the RQ the indirection table
//! picks (`table[hash & 63]`).

use gdma_defs::*;

use super::util::*;
use crate::testdrv::QueuePair;

/// One IPv4 row: source, source port, destination, destination port, IPv4 (2-tuple) hash,
/// TCP/IPv4 (4-tuple) hash.
type Ipv4Row = ([u8; 4], u16, [u8; 4], u16, u32, u32);

/// The IPv4 rows: the numbers of the gdma-defs RSS tests (Microsoft's table).
const IPV4_ROWS: [Ipv4Row; 5] = [
    ([66, 9, 149, 187], 2794, [161, 142, 100, 80], 1766, 0x323e_8fc2, 0x51cc_c178),
    ([199, 92, 111, 2], 14230, [65, 69, 140, 83], 4739, 0xd718_262a, 0xc626_b0ea),
    ([24, 19, 198, 95], 12898, [12, 22, 207, 184], 38024, 0xd2d0_a5de, 0x5c2b_394a),
    ([38, 27, 205, 30], 48228, [209, 142, 163, 6], 2217, 0x8298_9176, 0xafc7_327f),
    ([153, 39, 163, 191], 44251, [202, 188, 127, 2], 1303, 0x5d18_09c5, 0x10e8_28a2),
];

/// The IPv6 rows, in the same order of fields.
const IPV6_ROWS: [(&str, u16, &str, u16, u32, u32); 3] = [
    ("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x2cc1_8cd5, 0x4020_7d3d),
    ("3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0x0f0c_461c, 0xdde5_1bbf),
    (
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        "fe80::200:f8ff:fe21:67cf",
        38024,
        0x4b61_e985,
        0x02d1_feef,
    ),
];

/// IPv6 "no next header": an L4 protocol without ports.
const NO_NEXT_HEADER: u8 = 59;

/// A frame and what its RX completion must say.
struct Case {
    frame: Vec<u8>,
    hash: u32,
    hashtype: u16,
    /// Index of the RQ it must land in.
    rq: usize,
    what: String,
}

/// Vport 1 with `n` RQs (16 buffers each), steered by `table` (indices into the RQs) with
/// `default` as the default RQ and `key`; an SQ on vport 0.
struct RssRig {
    r: Rig,
    sq: QueuePair,
    rqs: Vec<QueuePair>,
    bufs: Vec<Vec<u64>>,
}

impl RssRig {
    fn new(n: usize, table: &[usize], default: usize, key: [u8; 40]) -> RssRig {
        let mut r = Rig::new();
        let sq = r.sq(0);
        let mut rqs: Vec<QueuePair> = (0..n).map(|_| r.rq(1)).collect();
        let bufs = rqs.iter_mut().map(|q| r.fill(q, 16, 2048)).collect();
        let handles: Vec<u64> = table.iter().map(|&i| rqs[i].handle).collect();
        let s = config_rx_table(
            &mut r.d,
            r.p[1].handle,
            rqs[default].handle,
            &handles,
            Some(key),
            false,
        );
        assert_eq!(s, 0);
        RssRig { r, sq, rqs, bufs }
    }

    /// Sends every case, then checks each RQ received exactly its cases, in order, with the
    /// right hash and hash type.
    fn check(&mut self, cases: &[Case]) {
        let spec = self.r.spec(&self.sq, 0);
        for c in cases {
            self.r.send(&mut self.sq, &c.frame, &spec);
            assert_eq!(cqe_type(&next(&self.r.d, &mut self.sq.cq)), CQE_TX_OKAY, "{}", c.what);
        }
        self.r.settle();
        for (j, rq) in self.rqs.iter_mut().enumerate() {
            let mine: Vec<&Case> = cases.iter().filter(|c| c.rq == j).collect();
            let got = drain(&self.r.d, &mut rq.cq);
            assert_eq!(got.len(), mine.len(), "frames in RQ {j}");
            for (k, (c, want)) in got.iter().zip(&mine).enumerate() {
                let o = rx_oob(c);
                assert_eq!(o.cqe_hdr.cqe_type(), CQE_RX_OKAY, "{}", want.what);
                assert_eq!(
                    (o.ppi[0].pkt_len as usize, o.ppi[0].pkt_hash, o.flags.rx_hashtype()),
                    (want.frame.len(), want.hash, want.hashtype),
                    "{} (RQ {j})",
                    want.what
                );
                assert_eq!(read(&self.r.d, self.bufs[j][k], want.frame.len()), want.frame);
            }
        }
    }
}

/// The round-robin table the test driver programs: entry i is RQ `i % n`.
fn round_robin(n: usize) -> Vec<usize> {
    (0..64).map(|i| i % n).collect()
}

/// The IPv4 cases of every row: TCP and UDP (4-tuple hash), ICMP (2-tuple hash).
fn ipv4_cases(mac: [u8; 6], rq_of: impl Fn(u32) -> usize) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, (src, sp, dst, dp, h2, h4)) in IPV4_ROWS.into_iter().enumerate() {
        let ip = Ip::V4(src, dst);
        for (proto, hash, ty, name) in [
            (TCP, h4, NDIS_HASH_TCP_IPV4, "TCP"),
            (UDP, h4, NDIS_HASH_UDP_IPV4, "UDP"),
            (ICMP, h2, NDIS_HASH_IPV4, "ICMP"),
        ] {
            out.push(Case {
                frame: ip_frame(mac, ip, proto, (sp, dp), 30 + i),
                hash,
                hashtype: ty,
                rq: rq_of(hash),
                what: format!("IPv4 row {i} {name}"),
            });
        }
    }
    out
}

/// The IPv6 cases of every row: TCP and UDP (4-tuple hash), no next header (2-tuple hash).
fn ipv6_cases(mac: [u8; 6], rq_of: impl Fn(u32) -> usize) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, (src, sp, dst, dp, h2, h4)) in IPV6_ROWS.into_iter().enumerate() {
        let ip = Ip::v6(src, dst);
        for (proto, hash, ty, name) in [
            (TCP, h4, NDIS_HASH_TCP_IPV6, "TCP"),
            (UDP, h4, NDIS_HASH_UDP_IPV6, "UDP"),
            (NO_NEXT_HEADER, h2, NDIS_HASH_IPV6, "no next header"),
        ] {
            out.push(Case {
                frame: ip_frame(mac, ip, proto, (sp, dp), 8 + i),
                hash,
                hashtype: ty,
                rq: rq_of(hash),
                what: format!("IPv6 row {i} {name}"),
            });
        }
    }
    out
}

#[test]
fn microsoft_ipv4_vectors_with_four_rqs() {
    let table = round_robin(4);
    let mut t = RssRig::new(4, &table, 0, MS_RSS_VERIFICATION_KEY);
    let cases = ipv4_cases(t.r.p[1].mac, |h| table[h as usize & 63]);
    // The example of the brief: 66.9.149.187:2794 -> 161.142.100.80:1766.
    assert_eq!((cases[0].hash, cases[2].hash), (0x51cc_c178, 0x323e_8fc2));
    assert_eq!(cases[0].rq, 0x38 % 4);
    for c in &cases {
        assert_eq!(c.hashtype.count_ones(), 1, "a single NDIS bit");
    }
    t.check(&cases);
}

#[test]
fn microsoft_ipv6_vectors_with_four_rqs() {
    let table = round_robin(4);
    let mut t = RssRig::new(4, &table, 0, MS_RSS_VERIFICATION_KEY);
    let cases = ipv6_cases(t.r.p[1].mac, |h| table[h as usize & 63]);
    t.check(&cases);
}

#[test]
fn the_table_is_indexed_by_the_low_six_bits_and_unhashable_frames_use_the_default() {
    // Entry i names RQ i / 16, so the RQ tells the index's high bits apart: a device that took
    // `hash % 4` or the high hash bits would put frames elsewhere. RQ 4 is only the default.
    let table: Vec<usize> = (0..64).map(|i| i / 16).collect();
    let mut t = RssRig::new(5, &table, 4, MS_RSS_VERIFICATION_KEY);
    let mac = t.r.p[1].mac;
    let rq_of = |h: u32| table[h as usize & 63];
    let mut cases = ipv4_cases(mac, rq_of);
    cases.extend(ipv6_cases(mac, rq_of));
    let used: std::collections::BTreeSet<usize> = cases.iter().map(|c| c.rq).collect();
    assert_eq!(used.len(), 4, "the vectors reach every table quarter");
    // Not IP: the default RQ, no hash.
    cases.push(Case {
        frame: raw_frame(mac, 64, 1),
        hash: 0,
        hashtype: 0,
        rq: 4,
        what: "not IP".into(),
    });
    // An IPv4 TCP fragment: no ports to trust, so the 2-tuple hash.
    let (src, sp, dst, dp, h2, _) = IPV4_ROWS[0];
    let mut frag = ip_frame(mac, Ip::V4(src, dst), TCP, (sp, dp), 30);
    frag[20] = 0x20; // more fragments, offset 0
    frag[24..26].copy_from_slice(&[0, 0]);
    let c = rfc1071(&frag[14..34]);
    frag[24..26].copy_from_slice(&c.to_be_bytes());
    cases.push(Case {
        frame: frag,
        hash: h2,
        hashtype: NDIS_HASH_IPV4,
        rq: rq_of(h2),
        what: "fragment".into(),
    });
    t.check(&cases);
}

/// Toeplitz, bit by bit, written here from the definition (for a key other than the table's).
fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let bit = |i: usize| (key[i / 8] >> (7 - i % 8)) & 1;
    let mut h = 0u32;
    for i in 0..input.len() * 8 {
        if (input[i / 8] >> (7 - i % 8)) & 1 == 1 {
            h ^= (0..32).fold(0u32, |w, j| (w << 1) | bit(i + j) as u32);
        }
    }
    h
}

#[test]
fn a_new_key_takes_effect() {
    let table = round_robin(4);
    let mut t = RssRig::new(4, &table, 0, MANA_DEFAULT_RSS_KEY);
    let mac = t.r.p[1].mac;
    let (src, sp, dst, dp, _, h4) = IPV4_ROWS[0];
    let mut input = [src, dst].concat();
    input.extend_from_slice(&sp.to_be_bytes());
    input.extend_from_slice(&dp.to_be_bytes());
    let hash = toeplitz(&MANA_DEFAULT_RSS_KEY, &input);
    assert_eq!(toeplitz(&MS_RSS_VERIFICATION_KEY, &input), h4, "the reference Toeplitz");
    assert_ne!(hash, h4);
    let frame = ip_frame(mac, Ip::V4(src, dst), TCP, (sp, dp), 10);
    t.check(&[Case {
        frame,
        hash,
        hashtype: NDIS_HASH_TCP_IPV4,
        rq: table[hash as usize & 63],
        what: "default key".into(),
    }]);
}
