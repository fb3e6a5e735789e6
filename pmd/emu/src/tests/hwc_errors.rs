//! Unknown and malformed HWC requests and WQEs: each gets an error status (or, for a WQE the
//! device cannot even size, is dropped) and the channel keeps answering. A hang would show as a
//! test-driver timeout (10 s) and fail the test.

use gdma_defs::*;

use super::util::*;
use crate::Device;
use crate::testdrv::TestDriver;

const FAIL: u32 = GDMA_STATUS_FAILURE;

/// Sets `msg_size` (bytes 12..16 of the request header).
fn with_msg_size(mut m: Vec<u8>, size: u32) -> Vec<u8> {
    m[12..16].copy_from_slice(&size.to_le_bytes());
    m
}

#[test]
fn malformed_requests_get_an_error_answer() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    d.establish().unwrap();
    let errors = || dev.stats().device.hwc_errors.get();
    let list = raw_msg(GDMA_LIST_DEVICES, HWC_DEV_ID, 1, &[]);

    // Framing errors: the header cannot be trusted, so the answer is a bare failure header.
    let framing: [(Vec<u8>, &str); 5] = [
        (list[..20].to_vec(), "shorter than the request header"),
        (with_msg_size(list.clone(), 4000), "msg_size beyond the bytes sent"),
        (with_msg_size(list.clone(), 8), "msg_size smaller than the header"),
        (with_msg_size(list.clone(), u32::MAX), "msg_size of 4 GiB"),
        (raw_msg(GDMA_LIST_DEVICES, HWC_DEV_ID, 2, &[0; 4960]), "5000 bytes, over the 4 KiB limit"),
    ];
    for (i, (m, why)) in framing.iter().enumerate() {
        let (h, body) = d.raw_request(m).unwrap();
        assert_eq!((h.status, h.response.msg_size, body.len()), (FAIL, 32, 0), "{why}");
        assert_eq!(errors(), i as u64 + 1, "{why}");
    }
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 0, "none of them was parsed");

    // Unknown message types: CMD_UNSUPPORTED, with the ids echoed.
    for (t, dev_id) in [
        (0x7777, HWC_DEV_ID),
        (GDMA_CREATE_PD, HWC_DEV_ID),
        (MANA_QUERY_LINK_CONFIG, TestDriver::MANA),
    ] {
        let (h, body) = d.raw_request(&raw_msg(t, dev_id, 9, &[])).unwrap();
        assert_eq!(h.status, GDMA_STATUS_CMD_UNSUPPORTED, "{t:#x}");
        assert_eq!(
            (h.response.msg_type, h.response.hwc_msg_id, h.dev_id, h.activity_id),
            (t, 9, dev_id, 0x7e57_0009)
        );
        assert!(body.is_empty());
    }
    assert_eq!(dev.stats().device.hwc_unknown.get(), 3);
    assert_eq!(errors(), 8);

    // Known types with bodies of the wrong size: a failure status, the type echoed.
    let region = GdmaCreateDmaRegionReq {
        length: 10 * 4096,
        offset_in_page: 0,
        gdma_page_type: GDMA_PAGE_TYPE_4K,
        page_count: 10,
        page_addr_list_len: 10,
    };
    let mut region_body = region.as_bytes().to_vec();
    region_body.extend_from_slice(&[0u8; 16]); // 2 of the 10 page addresses
    let rx = ManaCfgRxSteerReqV2 {
        num_indir_entries: 64,
        indir_tab_offset: MANA_CFG_RX_STEER_V2_TABLE_OFFSET as u16,
        ..Default::default()
    };
    let bodies: [(u32, GdmaDevId, Vec<u8>, &str); 7] = [
        (GDMA_CREATE_QUEUE, HWC_DEV_ID, vec![0; 8], "CREATE_QUEUE with 8 of 56 bytes"),
        (GDMA_GENERATE_TEST_EQE, HWC_DEV_ID, vec![], "GENERATE_TEST_EQE without a body"),
        (GDMA_CREATE_DMA_REGION, HWC_DEV_ID, region_body, "a page list shorter than announced"),
        (MANA_CONFIG_VPORT_RX, TestDriver::MANA, vec![0; 16], "CONFIG_VPORT_RX with 16 bytes"),
        (MANA_CONFIG_VPORT_RX, TestDriver::MANA, rx.as_bytes().to_vec(), "a table past the end"),
        (MANA_DESTROY_WQ_OBJ, TestDriver::MANA, vec![0; 4], "DESTROY_WQ_OBJ with 4 of 16 bytes"),
        (MANA_QUERY_VPORT_CONFIG, TestDriver::MANA, vec![], "QUERY_VPORT_CONFIG without a body"),
    ];
    for (i, (t, dev_id, body, why)) in bodies.iter().enumerate() {
        let (h, _) = d.raw_request(&raw_msg(*t, *dev_id, 20 + i as u16, body)).unwrap();
        assert_eq!((h.status, h.response.msg_type), (FAIL, *t), "{why}");
        assert_eq!(h.response.hwc_msg_id, 20 + i as u16, "{why}");
    }
    assert_eq!(errors(), 15);
    assert_eq!(dev.stats().requests(MANA_CONFIG_VPORT_RX), 2, "parsed and counted by type");

    // The channel still answers.
    let l = d.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[]).unwrap();
    assert_eq!(l.num_of_devs, 2);
    d.register().unwrap();
    assert_eq!(errors(), 15);
}

#[test]
fn malformed_hwc_wqes_never_wedge_the_channel() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let mut h = RawHwc::establish(&dev, &mut d).unwrap();
    let errors = || dev.stats().device.hwc_errors.get();
    let list = |id| typed_msg(HWC_DEV_ID, id, &GdmaListDevicesReq, &[]);
    let len = list(0).len() as u32;
    let wqe = |oob: &HwcTxOob, sge: Sge| -> Vec<u8> {
        hwc_sq_wqe(oob, sge).iter().flat_map(|x| x.to_le_bytes()).collect()
    };
    let mem_end = d.memory().iova_base() + MEM as u64;

    // Request WQEs whose OOB or SGE is wrong: answered with a failure status.
    d.write(h.req_buf, &list(1));
    let sge = Sge::new(h.req_buf, h.gpa_mkey, len);
    let cases: [(Vec<u8>, &str); 6] = [
        (wqe(&HwcTxOob::vf(h.cq.id, h.sq.id + 7), sge), "OOB naming another SQ"),
        (wqe(&HwcTxOob::vf(h.cq.id + 1, h.sq.id), sge), "OOB naming another CQ"),
        (h.request_wqe(0x10, len), "request outside the mapped memory"),
        (h.request_wqe(mem_end - 16, 64), "request crossing the end of the mapping"),
        (h.request_wqe(h.req_buf, 0), "empty request"),
        (h.request_wqe(h.req_buf, 8192), "request longer than 4 KiB"),
    ];
    for (i, (w, why)) in cases.iter().enumerate() {
        h.post_wqe(&d, w);
        let (_, r, body) = h.wait_answer(&d);
        assert_eq!((r.status, body.len()), (FAIL, 0), "{why}");
        assert_eq!(errors(), i as u64 + 1, "{why}");
    }
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 0);

    // WQEs that cannot be sized (invalid OOB size code, no SGE): dropped and counted; the next
    // request gets its own answer.
    let bad_code = WqeHeader::ZERO.with_num_sgl_entries(1).with_inline_client_oob_size(5);
    h.post_wqe(&d, &wqe_bytes(bad_code, &[], &[sge]));
    wait_for("the unsizable WQE", || errors() == 7);
    let no_sge = WqeHeader::new(0, InlineOobSize::Large);
    h.post_wqe(&d, &wqe_bytes(no_sge, HwcTxOob::vf(h.cq.id, h.sq.id).as_bytes(), &[]));
    wait_for("the WQE without SGE", || errors() == 8);
    let (r, body) = h.request(&d, &list(40));
    assert_eq!((r.status, r.response.hwc_msg_id), (0, 40));
    assert_eq!(read_zero_extended::<GdmaListDevicesResp>(&body).num_of_devs, 2);

    // A response buffer outside the mapped memory: the request still completes (no hang), the
    // write is a counted DMA error, and the next buffer gets the next answer.
    h.repost = false;
    let (r, _) = h.request(&d, &list(41));
    assert_eq!(r.response.hwc_msg_id, 41);
    let dma = dev.stats().device.dma_errors.get();
    let at = h.rq.head;
    h.post_resp_buf(&d, 0x10, 4096);
    h.post_msg(&d, &list(42));
    let mut oob = None;
    wait_for("the completion of the lost response", || {
        oob = h.poll_rq_cqe(&d);
        oob.is_some()
    });
    assert_eq!(oob.unwrap().wqe_offset, at, "the byte offset of the bad RQ WQE");
    assert_eq!(dev.stats().device.dma_errors.get(), dma + 1);
    h.repost = true;
    h.post_resp_buf(&d, h.resp_buf, 4096);
    let (r, _) = h.request(&d, &list(43));
    assert_eq!((r.status, r.response.hwc_msg_id), (0, 43));
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 4);
}
