//! Bring-up: SMC, hardware channel, registration, queues, and a first packet through a pair.

use gdma_defs::*;

use crate::testdrv::TestDriver;
use crate::{Device, DeviceConfig, WireSpec};

fn device(vports: u16) -> Device {
    Device::start(DeviceConfig::new(vports, WireSpec::Pair)).expect("device")
}

#[test]
fn hwc_handshake_and_registration() {
    let dev = device(2);
    let mut d = TestDriver::new(&dev, 8 << 20);
    d.establish().unwrap();
    assert_eq!((d.hwc_eq.id, d.hwc_cq.id), (1, 2));
    d.register().unwrap();
    assert_ne!(d.db_id, 0, "page 0 belongs to the HWC");
    let st = dev.stats();
    assert_eq!(st.requests(GDMA_VERIFY_VF_DRIVER_VERSION), 1);
    assert_eq!(st.requests(GDMA_LIST_DEVICES), 1);
    assert_eq!(st.requests(GDMA_REGISTER_DEVICE), 1);
}

#[test]
fn a_frame_crosses_a_pair() {
    let dev = device(2);
    let mut d = TestDriver::new(&dev, 16 << 20);
    d.establish().unwrap();
    d.register().unwrap();
    let (v0, mac0) = d.vport(0).unwrap();
    let (v1, mac1) = d.vport(1).unwrap();
    let mut sq = d.create_wq(v0, GdmaQueueType::Sq, 4096, 4096, None).unwrap();
    let mut rq = d.create_wq(v1, GdmaQueueType::Rq, 4096, 4096, None).unwrap();
    d.config_rx(v1, &[rq.handle], None, false).unwrap();
    let buf = d.post_rx(&mut rq.wq, 2048).unwrap();
    d.ring_rq(&rq.wq);
    let mut frame = vec![0u8; 60];
    frame[..6].copy_from_slice(&mac1);
    frame[6..12].copy_from_slice(&mac0);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    frame[20] = 0x42;
    let spec =
        TxOobSpec { cq_id: sq.cq.id, sq_id: sq.wq.id, vport_offset: 0, ..Default::default() };
    d.post_tx(&mut sq.wq, &frame, 1, &spec).unwrap();
    d.ring_sq(&sq.wq);
    let tx = d.wait_cq(&mut sq.cq).unwrap();
    assert_eq!(ManaCqeHeader(tx.data[0]).cqe_type(), CQE_TX_OKAY);
    assert_eq!((tx.info.wq_num(), tx.info.is_sq()), (sq.wq.id, true));
    let rx = d.wait_cq(&mut rq.cq).unwrap();
    let oob = RxCompOob::from_cqe_data(&rx.data);
    assert_eq!(oob.cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(oob.packets().collect::<Vec<_>>(), [(60, 0)]);
    let mut got = [0u8; 60];
    d.read(buf, &mut got);
    assert_eq!(got[..], frame[..]);
    assert_eq!(dev.stats().vports[1].rx_packets.get(), 1);
}
