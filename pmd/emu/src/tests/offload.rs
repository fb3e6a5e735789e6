//! Offloads: TX checksums (the driver seeds the L4 field with the pseudo-header sum, as DPDK and
//! Linux do) checked on the peer with an independent RFC 1071 routine; RX checksum flags for
//! good and deliberately broken frames; checksum requests that do not match the frame; VLAN
//! insertion and stripping.

use gdma_defs::*;

use super::util::*;
use crate::testdrv::QueuePair;

/// A rig with one RQ (64 buffers of 2048 bytes) on vport 1 and an SQ on vport 0.
fn rig() -> (Rig, QueuePair, QueuePair, Vec<u64>) {
    let mut r = Rig::new();
    let sq = r.sq(0);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, 64, 2048);
    (r, sq, rq, bufs)
}

/// Checksum flags of an RX completion: (ip ok, ip bad, tcp ok, tcp bad, udp ok, udp bad).
fn csum_flags(f: RxCompFlags) -> [bool; 6] {
    [
        f.rx_iphdr_csum_succeed(),
        f.rx_iphdr_csum_fail(),
        f.rx_tcp_csum_succeed(),
        f.rx_tcp_csum_fail(),
        f.rx_udp_csum_succeed(),
        f.rx_udp_csum_fail(),
    ]
}

/// Sends `tx` with `spec`, expects `want` as the TX result and, on success, `rx` in the next
/// buffer; returns the RX completion OOB.
struct Io {
    r: Rig,
    sq: QueuePair,
    rq: QueuePair,
    bufs: Vec<u64>,
    next_buf: usize,
}

impl Io {
    fn new() -> Io {
        let (r, sq, rq, bufs) = rig();
        Io { r, sq, rq, bufs, next_buf: 0 }
    }

    fn spec(&self) -> TxOobSpec {
        self.r.spec(&self.sq, 0)
    }

    /// Sends `tx`; expects it on the peer as `rx`; returns the RX completion OOB.
    fn roundtrip(&mut self, tx: &[u8], spec: &TxOobSpec, rx: &[u8], what: &str) -> RxCompOob {
        self.r.send(&mut self.sq, tx, spec);
        assert_eq!(cqe_type(&next(&self.r.d, &mut self.sq.cq)), CQE_TX_OKAY, "{what}");
        let o = rx_oob(&next(&self.r.d, &mut self.rq.cq));
        assert_eq!(o.cqe_hdr.cqe_type(), CQE_RX_OKAY, "{what}");
        assert_eq!(o.ppi[0].pkt_len as usize, rx.len(), "{what}");
        let got = read(&self.r.d, self.bufs[self.next_buf], rx.len());
        self.next_buf += 1;
        assert_eq!(got, rx, "{what}: received bytes");
        o
    }
}

/// Makes the UDP checksum of a correct frame compute to 0 by choosing the last two payload
/// bytes (the segment length must be even), so RFC 768's "send 0 as all ones" applies.
fn udp_sum_zero(mut f: Vec<u8>) -> Vec<u8> {
    let n = f.len();
    let at = l4_csum_at(&f);
    for w in 0..=0xffffu16 {
        f[n - 2..].copy_from_slice(&w.to_be_bytes());
        f[at..at + 2].copy_from_slice(&[0, 0]);
        let l = layout(&f);
        let mut all = pseudo_header(&f);
        all.extend_from_slice(&f[l.l4..]);
        if rfc1071(&all) == 0 {
            f[at..at + 2].copy_from_slice(&0xffffu16.to_be_bytes());
            return f;
        }
    }
    unreachable!("some word makes the sum all ones")
}

#[test]
fn tx_checksum_offload_produces_correct_checksums() {
    let mut io = Io::new();
    let mac = io.r.p[1].mac;
    let base = io.spec();
    let v4 = Ip::V4([10, 1, 2, 3], [192, 168, 40, 77]);
    let v6 = Ip::v6("2001:db8::1:2", "2001:db8:ffff::99");
    let v4tcp = TxOobSpec { l3: TxL3::Ipv4, ip_csum: true, tcp_csum: true, trans_off: 34, ..base };
    let v4udp = TxOobSpec { l3: TxL3::Ipv4, ip_csum: true, udp_csum: true, ..base };
    let v6tcp = TxOobSpec { l3: TxL3::Ipv6, tcp_csum: true, trans_off: 54, ..base };
    let v6udp = TxOobSpec { l3: TxL3::Ipv6, udp_csum: true, ..base };
    // A short UDP frame padded to 60 bytes: the checksum covers the IP length only.
    let mut padded = ip_frame(mac, v4, UDP, (5000, 53), 4);
    padded.resize(60, 0xaa);
    let zero_sum = udp_sum_zero(ip_frame(mac, v4, UDP, (7, 9), 40));
    let cases: [(Vec<u8>, TxOobSpec, &str); 7] = [
        (ip_frame(mac, v4, TCP, (40000, 443), 40), v4tcp, "IPv4 TCP"),
        (ip_frame(mac, v4, UDP, (1234, 4789), 33), v4udp, "IPv4 UDP, odd length"),
        (padded, v4udp, "IPv4 UDP padded to 60 bytes"),
        (zero_sum, v4udp, "IPv4 UDP whose checksum computes to 0"),
        (ip_frame(mac, v4, TCP, (1, 2), 1400), v4tcp, "IPv4 TCP, 1400 bytes"),
        (ip_frame(mac, v6, TCP, (22, 60000), 41), v6tcp, "IPv6 TCP, odd length"),
        (ip_frame(mac, v6, UDP, (546, 547), 100), v6udp, "IPv6 UDP"),
    ];
    for (good, spec, what) in &cases {
        // Independent self-check of the expected frame.
        assert!(l4_ok(good), "{what}");
        let mut tx = good.clone();
        seed_for_offload(&mut tx);
        assert!(!l4_ok(&tx), "{what}: the seeded frame is not yet correct");
        let o = io.roundtrip(&tx, spec, good, what);
        let got = read(&io.r.d, io.bufs[io.next_buf - 1], good.len());
        let v4 = layout(&got).v == 4;
        assert!(!v4 || ipv4_header_ok(&got), "{what}: IPv4 header checksum");
        assert!(l4_ok(&got), "{what}: L4 checksum");
        let tcp = layout(&got).proto == TCP;
        assert_eq!(csum_flags(o.flags), [v4, false, tcp, false, !tcp, false], "{what}");
    }
    // Only the IP header requested: the (correct) TCP checksum is left alone.
    let good = ip_frame(mac, v4, TCP, (80, 8080), 20);
    let mut tx = good.clone();
    tx[24..26].copy_from_slice(&[0, 0]);
    let ip_only = TxOobSpec { l3: TxL3::Ipv4, ip_csum: true, ..base };
    io.roundtrip(&tx, &ip_only, &good, "IP header only");
}

#[test]
fn rx_flags_report_checksum_results() {
    let mut io = Io::new();
    let mac = io.r.p[1].mac;
    let spec = io.spec();
    let v4 = Ip::V4([172, 16, 0, 1], [172, 16, 0, 2]);
    let v6 = Ip::v6("fd00::1", "fd00::2");
    let flip = |mut f: Vec<u8>, at: usize| {
        f[at] ^= 0x5a;
        f
    };
    let tcp4 = ip_frame(mac, v4, TCP, (1000, 2000), 26);
    let udp4 = ip_frame(mac, v4, UDP, (1000, 2000), 26);
    let mut udp4_none = udp4.clone();
    let at = l4_csum_at(&udp4_none);
    udp4_none[at..at + 2].copy_from_slice(&[0, 0]);
    let mut seeded = tcp4.clone();
    seed_for_offload(&mut seeded);
    let last = tcp4.len() - 1;
    let cases: [(Vec<u8>, [bool; 6], &str); 11] = [
        (tcp4.clone(), [true, false, true, false, false, false], "IPv4 TCP good"),
        (flip(tcp4.clone(), 24), [false, true, true, false, false, false], "bad IPv4 header"),
        (flip(tcp4.clone(), last), [true, false, false, true, false, false], "bad TCP payload"),
        (udp4.clone(), [true, false, false, false, true, false], "IPv4 UDP good"),
        (
            flip(udp4.clone(), udp4.len() - 1),
            [true, false, false, false, false, true],
            "bad UDP payload",
        ),
        (udp4_none, [true, false, false, false, true, false], "IPv4 UDP without checksum"),
        (ip_frame(mac, v6, TCP, (3, 4), 31), [false, false, true, false, false, false], "IPv6 TCP"),
        (
            flip(ip_frame(mac, v6, UDP, (3, 4), 31), 60),
            [false, false, false, false, false, true],
            "bad IPv6 UDP",
        ),
        (seeded, [false, true, false, true, false, false], "seeded but sent without offload"),
        (ip_frame(mac, v4, ICMP, (0, 0), 40), [true, false, false, false, false, false], "ICMP"),
        (raw_frame(mac, 64, 3), [false; 6], "not IP"),
    ];
    for (f, want, what) in &cases {
        let o = io.roundtrip(f, &spec, f, what);
        assert_eq!(csum_flags(o.flags), *want, "{what}");
        assert!(!o.flags.rx_outer_iphdr_csum_succeed() && !o.flags.rx_outer_iphdr_csum_fail());
        assert!(!o.flags.rx_vlantag_present(), "{what}");
    }
}

#[test]
fn checksum_requests_that_do_not_match_the_frame_are_invalid_oob() {
    let mut io = Io::new();
    let mac = io.r.p[1].mac;
    let base = io.spec();
    let v4 = Ip::V4([10, 0, 0, 1], [10, 0, 0, 2]);
    let v6 = Ip::v6("fd00::1", "fd00::2");
    let mut frag = ip_frame(mac, v4, TCP, (1, 2), 40);
    frag[20] = 0x20;
    let cases = [
        (
            ip_frame(mac, v6, TCP, (1, 2), 20),
            TxOobSpec { ip_csum: true, ..base },
            "IPv4 header sum on IPv6",
        ),
        (
            ip_frame(mac, v4, UDP, (1, 2), 20),
            TxOobSpec { tcp_csum: true, ..base },
            "TCP sum on UDP",
        ),
        (
            ip_frame(mac, v6, TCP, (1, 2), 20),
            TxOobSpec { udp_csum: true, ..base },
            "UDP sum on TCP",
        ),
        (raw_frame(mac, 64, 0), TxOobSpec { udp_csum: true, ..base }, "UDP sum on a non-IP frame"),
        (frag, TxOobSpec { tcp_csum: true, ..base }, "TCP sum on a fragment"),
    ];
    for (f, spec, what) in &cases {
        io.r.send(&mut io.sq, f, spec);
        assert_eq!(cqe_type(&next(&io.r.d, &mut io.sq.cq)), CQE_TX_INVALID_OOB, "{what}");
    }
    // Nothing was sent, and the queue goes on.
    let good = ip_frame(mac, v4, UDP, (1, 2), 20);
    io.roundtrip(&good, &base, &good, "good");
    io.r.settle();
    assert_eq!(drain(&io.r.d, &mut io.rq.cq), []);
    assert_eq!(io.r.dev.stats().vports[1].rx_packets.get(), 1);
}

#[test]
fn vlan_tags_are_inserted_on_tx_and_stripped_on_rx() {
    let mut io = Io::new();
    let mac = io.r.p[1].mac;
    let base = io.spec();
    let v4 = Ip::V4([10, 9, 8, 7], [10, 9, 8, 6]);
    let f = ip_frame(mac, v4, UDP, (5353, 5353), 50);
    let tag = |pcp, dei, vid| TxOobSpec { vlan: Some(VlanTag { pcp, dei, vid }), ..base };
    for (spec, vid, what) in [
        (tag(5, true, 0x123), 0x123, "pcp 5, dei, vid 0x123"),
        (tag(0, false, 4095), 4095, "vid 4095"),
        (tag(3, false, 0), 0, "priority tag (vid 0)"),
    ] {
        let o = io.roundtrip(&f, &spec, &f, what);
        assert!(o.flags.rx_vlantag_present(), "{what}");
        assert_eq!(o.flags.rx_vlan_id(), vid, "{what}");
        assert_eq!(csum_flags(o.flags), [true, false, false, false, true, false], "{what}");
    }
    // Tag insertion and checksum offload together.
    let mut seeded = f.clone();
    seed_for_offload(&mut seeded);
    let both = TxOobSpec { l3: TxL3::Ipv4, ip_csum: true, udp_csum: true, ..tag(1, false, 77) };
    let o = io.roundtrip(&seeded, &both, &f, "tag and checksums");
    assert_eq!((o.flags.rx_vlantag_present(), o.flags.rx_vlan_id()), (true, 77));
    assert_eq!(csum_flags(o.flags), [true, false, false, false, true, false]);

    // A frame that already carries a tag (sent without insertion) arrives stripped.
    let t = tagged(&f, (2 << 13) | 0xabc);
    assert_eq!(t.len(), f.len() + 4);
    let o = io.roundtrip(&t, &base, &f, "tagged on the wire");
    assert_eq!((o.flags.rx_vlantag_present(), o.flags.rx_vlan_id()), (true, 0xabc));
    assert_eq!(csum_flags(o.flags), [true, false, false, false, true, false]);
    // Untagged stays untagged.
    let o = io.roundtrip(&f, &base, &f, "untagged");
    assert_eq!((o.flags.rx_vlantag_present(), o.flags.rx_vlan_id()), (false, 0));
}
