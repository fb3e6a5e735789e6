//! End-to-end uses of the contract: a driver and a device model exchanging entries through
//! simulated ring memory, using only this crate's encoders and decoders.

use gdma_defs::*;

/// A CQ ring in "device memory" as dwords; the driver reads it dword by dword.
struct CqRing {
    ring: OwnerRing,
    mem: Vec<u32>,
}

impl CqRing {
    fn slot_dwords(&mut self, index: u32) -> &mut [u32] {
        let s = self.ring.slot(index) as usize * 16;
        &mut self.mem[s..s + 16]
    }

    /// Device side: post a TX completion for `wq` at free-running `tail`; info dword last.
    fn post(&mut self, tail: u32, wq: u32, cqe_type: u8) {
        let owner = self.ring.owner_for_tail(tail);
        let data = TxCompOob::new(cqe_type).to_cqe_data();
        let d = self.slot_dwords(tail);
        d[..CQE_DATA_DWORDS].copy_from_slice(&data);
        d[CQE_INFO_DWORD] = CqeInfo::new(wq, true, owner).0;
    }

    /// Driver side: classify the slot at `head` from its info dword alone.
    fn poll(&mut self, head: u32) -> (OwnerState, CqeInfo, u8) {
        let ring = self.ring;
        let d = self.slot_dwords(head);
        let info = CqeInfo(d[CQE_INFO_DWORD]);
        let hdr = ManaCqeHeader(d[0]);
        (ring.classify(head, info.owner_bits()), info, hdr.cqe_type())
    }
}

#[test]
fn cq_poll_across_u32_wrap_and_overflow() {
    let n = 64u32;
    let ring = OwnerRing::new(n).unwrap();
    // Start three laps before 2^32; unwritten slots hold the previous lap's owner.
    let start = 0u32.wrapping_sub(3 * n);
    let mut cq = CqRing { ring, mem: vec![0; n as usize * 16] };
    for i in 0..n {
        let old = ring.old_owner(start);
        cq.slot_dwords(start.wrapping_add(i))[CQE_INFO_DWORD] = CqeInfo::new(0, true, old).0;
    }
    let (mut head, mut tail) = (start, start);
    let mut seen = 0u32;
    // Device posts 5 laps in bursts of 40; the driver drains after each burst.
    while seen < 5 * n {
        for _ in 0..40 {
            cq.post(tail, 0x12 + (tail % 7), CQE_TX_OKAY);
            tail = tail.wrapping_add(1);
        }
        loop {
            let (state, info, ty) = cq.poll(head);
            match state {
                OwnerState::Empty => break,
                OwnerState::Valid => {
                    assert_eq!(info.wq_num(), 0x12 + (head % 7));
                    assert_eq!(ty, CQE_TX_OKAY);
                    head = head.wrapping_add(1);
                    seen += 1;
                }
                OwnerState::Overflow => panic!("unexpected overflow at head {head:#x}"),
            }
        }
        assert_eq!(head, tail);
        // The doorbell index stays within 8N and tracks the head across the wrap.
        let db = CqEqDoorbell::cq(9, ring.doorbell_index(head), false);
        assert_eq!(db.tail(), head % (8 * n));
        assert_eq!(ring.arm_outcome(tail, db.tail()), ArmOutcome::Armed);
    }
    assert!(head < start, "the counters wrapped past 2^32");
    // Device laps the driver: N + 1 entries without consumption overwrite slot(head).
    for _ in 0..=n {
        cq.post(tail, 0x12, CQE_TX_OKAY);
        tail = tail.wrapping_add(1);
    }
    assert_eq!(cq.poll(head).0, OwnerState::Overflow);
}

/// Writes `dwords` into a ring of `ring.len()` dwords at byte offset `off`, wrapping.
fn ring_write(ring: &mut [u32], off: u32, dwords: &[u32]) {
    let mask = ring.len() as u32 - 1;
    for (i, d) in dwords.iter().enumerate() {
        ring[((off / 4 + i as u32) & mask) as usize] = *d;
    }
}

/// Copies `len` bytes out of the ring starting at byte offset `off`, wrapping.
fn ring_read(ring: &[u32], off: u32, len: usize) -> Vec<u8> {
    let mask = ring.len() as u32 - 1;
    (0..len as u32 / 4).flat_map(|i| ring[((off / 4 + i) & mask) as usize].to_le_bytes()).collect()
}

#[test]
fn tx_wqe_wrapping_the_ring_then_completion() {
    let sq = WqRing::new(4096).unwrap();
    let mut ring = vec![0u32; 1024];
    let (sq_id, cq_id) = (0x12345u32, 0x15u32);
    // The driver's producer sits 2 BUs before the end of the ring.
    let head_bu = 126u32;
    let off = sq.byte_offset(head_bu);
    assert_eq!(off, 4032);

    // Driver: long OOB (VLAN) + 3 SGEs = 8 + 24 + 48 -> 96 bytes; the SGL wraps.
    let oob = TxOob::encode(&TxOobSpec {
        cq_id,
        sq_id,
        vport_offset: 7,
        l3: TxL3::Ipv4,
        ip_csum: true,
        tcp_csum: true,
        trans_off: 34,
        vlan: Some(VlanTag { pcp: 0, dei: false, vid: 10 }),
        ..Default::default()
    })
    .unwrap();
    let sgl =
        [Sge::new(0x10_0000, 7, 54), Sge::new(0x20_0000, 7, 1000), Sge::new(0x30_0000, 7, 446)];
    let size = oob.size();
    assert_eq!(wqe_size_bu(size, 3), 3);
    let mut dwords = Vec::new();
    dwords.extend_from_slice(&WqeHeader::new(3, size).to_dwords());
    dwords.extend_from_slice(&oob.to_dwords()[..size.bytes() as usize / 4]);
    for s in sgl {
        dwords.extend_from_slice(&s.to_dwords());
    }
    assert_eq!(dwords.len() * 4, size.sgl_offset() as usize + 48);
    ring_write(&mut ring, off, &dwords);
    assert_eq!(ring[0..4], sgl[2].to_dwords()); // third SGE wrapped to offset 0
    let new_head = head_bu + wqe_size_bu(size, 3);
    let (db_off, db_val) = Doorbell::Sq { id: sq_id, tail: wq_doorbell_tail(new_head) }.encode();
    assert_eq!((db_off, db_val), (DB_SQ, 0x0000_1020_0001_2345));

    // Device: decode the doorbell, accept it, copy the WQE out and parse it.
    let Some(Doorbell::Sq { id, tail }) = Doorbell::decode(db_off, db_val) else {
        panic!("not an SQ doorbell")
    };
    assert_eq!(id, sq_id);
    let avail = sq.accept_doorbell(off, off, tail).unwrap();
    assert_eq!(avail, 96);
    let bytes = ring_read(&ring, off, MAX_TX_WQE_SIZE.min(avail) as usize);
    let wqe = WqeRef::parse(&bytes, MAX_TX_WQE_SIZE).unwrap();
    assert_eq!(wqe.size_bytes(), 96);
    assert_eq!(wqe.sges().collect::<Vec<_>>(), sgl.to_vec());
    let got = TxOob::from_oob_bytes(wqe.oob()).unwrap();
    assert_eq!(got.short.vcq_num(), cq_id);
    assert_eq!(got.short.vsq_frame(), vsq_frame(sq_id));
    assert_eq!((got.long.vlan_id(), got.vport_offset()), (10, 7));
    assert_eq!(wqe.sges().map(|s| s.size).sum::<u32>(), 1500);

    // Device completes it; the driver decodes the CQE from dwords.
    let ring_cq = OwnerRing::new(64).unwrap();
    let cqe = Cqe {
        data: TxCompOob::new(CQE_TX_OKAY).to_cqe_data(),
        info: CqeInfo::new(sq_id, true, ring_cq.owner_for_tail(64)),
    };
    let d = cqe.to_dwords();
    let info = CqeInfo(d[CQE_INFO_DWORD]);
    assert_eq!(ring_cq.classify(64, info.owner_bits()), OwnerState::Valid);
    assert_eq!((info.wq_num(), info.is_sq()), (sq_id, true));
    assert_eq!(ManaCqeHeader(d[0]).cqe_type(), CQE_TX_OKAY);
    // The driver retires the WQE: its tail advances by the WQE's BUs.
    let tail_bu = head_bu + wqe.size_bu();
    assert_eq!(sq.free_bu(new_head, tail_bu), sq.size_bu());
}

#[test]
fn hwc_bootstrap_events_then_request() {
    // Device: after ESTABLISH_HWC, post INIT_EQ_ID_DB, INIT_DATA items and INIT_DONE.
    let eq = OwnerRing::for_eq_bytes(4096).unwrap();
    let events = [
        Event::HwcInitEqIdDb { eq_id: 1, doorbell: 0 },
        Event::HwcInitData { ty: HWC_INIT_DATA_CQID, value: 2 },
        Event::HwcInitData { ty: HWC_INIT_DATA_RQID, value: 3 },
        Event::HwcInitData { ty: HWC_INIT_DATA_SQID, value: 4 },
        Event::HwcInitData { ty: HWC_INIT_DATA_GPA_MKEY, value: 0x77 },
        Event::HwcInitDone,
    ];
    let mut mem = vec![0u32; 256 * 4];
    for (tail, e) in (eq.initial_index()..).zip(events) {
        let s = eq.slot(tail) as usize * 4;
        mem[s..s + 4].copy_from_slice(&e.to_eqe(eq.owner_for_tail(tail)).to_dwords());
    }
    // Driver: drain the EQ.
    let mut head = eq.initial_index();
    let (mut cq_id, mut sq_id, mut mkey, mut done) = (0, 0, 0, false);
    loop {
        let s = eq.slot(head) as usize * 4;
        let info = EqeInfo(mem[s + EQE_INFO_DWORD]);
        if eq.classify(head, info.owner_bits()) != OwnerState::Valid {
            break;
        }
        match Event::decode(info.event_type(), [mem[s], mem[s + 1], mem[s + 2]]) {
            Event::HwcInitData { ty: HWC_INIT_DATA_CQID, value } => cq_id = value,
            Event::HwcInitData { ty: HWC_INIT_DATA_SQID, value } => sq_id = value,
            Event::HwcInitData { ty: HWC_INIT_DATA_GPA_MKEY, value } => mkey = value,
            Event::HwcInitDone => done = true,
            _ => {}
        }
        head += 1;
    }
    assert_eq!((cq_id, sq_id, mkey, done, head), (2, 4, 0x77, true, 256 + 6));
    assert_eq!(CqEqDoorbell::eq(1, eq.doorbell_index(head), true).0, 0x8000_0106_0000_0001);

    // Driver: HWC SQ WQE carrying a request; device answers into an RQ buffer.
    let mut req_buf = [0u8; 64];
    let n = encode_request(
        &mut req_buf,
        RequestIds::hwc(0, 42),
        &GdmaGenerateTestEventReq { queue_index: 1 },
        &[],
    )
    .unwrap();
    let wqe = hwc_sq_wqe(&HwcTxOob::vf(cq_id, sq_id), Sge::new(0x5000, mkey, n as u32));
    let wqe_bytes: Vec<u8> = wqe.iter().flat_map(|d| d.to_le_bytes()).collect();
    let parsed = WqeRef::parse(&wqe_bytes, MAX_TX_WQE_SIZE).unwrap();
    let oob = HwcTxOob::read_from_bytes(parsed.oob()).unwrap();
    assert_eq!((oob.vscq.vscq_id(), oob.vsq_id), (cq_id, sq_id));
    let sge = parsed.sges().next().unwrap();
    assert_eq!((sge.mem_key, sge.size), (0x77, 44));
    let req = RequestRef::parse(&req_buf[..sge.size as usize]).unwrap();
    let body: GdmaGenerateTestEventReq = req.body().unwrap();
    assert_eq!(body.queue_index, 1);
    let mut resp_buf = [0u8; 4096];
    let m = encode_response(&mut resp_buf, &req.hdr, GDMA_STATUS_SUCCESS, &(), &[]).unwrap();
    let rx_oob = HwcRxOob::response(0, m as u32);
    let rq_cqe = Cqe { data: rx_oob.to_cqe_data(), info: CqeInfo::new(3, false, 1) };
    let got = HwcRxOob::from_cqe_data(&rq_cqe.data);
    let resp = ResponseRef::parse(&resp_buf[..got.tx_oob_data_size as usize]).unwrap();
    assert!(resp.hdr.matches(&req.hdr) && resp.hdr.is_success());
    assert_eq!(resp.hdr.activity_id, 42);
}
