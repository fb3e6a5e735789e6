//! Tests of the generic GDMA bodies (§6.3): exact byte positions and message flows.

use super::*;
use crate::eqe::{Event, GDMA_EQE_HWC_RESET_REQUEST};
use crate::queue::GDMA_EQ;

#[test]
fn request_metadata() {
    assert_eq!(<GdmaVerifyVerReq as HwcRequest>::MSG_TYPE, 1);
    assert_eq!(<GdmaQueryMaxResourcesReq as HwcRequest>::MSG_TYPE, 2);
    assert_eq!(<GdmaListDevicesReq as HwcRequest>::MSG_TYPE, 3);
    assert_eq!(<GdmaRegisterDeviceReq as HwcRequest>::MSG_TYPE, 4);
    assert_eq!(<GdmaDeregisterDeviceReq as HwcRequest>::MSG_TYPE, 5);
    assert_eq!(<GdmaGenerateTestEventReq as HwcRequest>::MSG_TYPE, 10);
    assert_eq!(<GdmaGenerateResetRequestEqeReq as HwcRequest>::MSG_TYPE, 11);
    assert_eq!(<GdmaCreateQueueReq as HwcRequest>::MSG_TYPE, 12);
    assert_eq!(<GdmaDisableQueueReq as HwcRequest>::MSG_TYPE, 13);
    assert_eq!(<GdmaCreateDmaRegionReq as HwcRequest>::MSG_TYPE, 25);
    assert_eq!(<GdmaDmaRegionAddPagesReq as HwcRequest>::MSG_TYPE, 26);
    assert_eq!(<GdmaDestroyDmaRegionReq as HwcRequest>::MSG_TYPE, 27);
    assert_eq!(<GdmaQueryHwcTimeout as HwcRequest>::MSG_TYPE, 84);
    // Expected response sizes in the request header: header + body.
    let h = request_header::<GdmaVerifyVerReq>(RequestIds::hwc(0, 0), 0);
    assert_eq!((h.req.msg_size, h.resp.msg_size), (640, 72));
    let h = request_header::<GdmaListDevicesReq>(RequestIds::hwc(0, 0), 0);
    assert_eq!((h.req.msg_size, h.resp.msg_size), (40, 32 + 264));
    let h = request_header::<GdmaRegisterDeviceReq>(RequestIds::hwc(0, 0), 0);
    assert_eq!(h.resp.msg_size, 44);
}

#[test]
fn verify_version_request_layout() {
    let mut body = GdmaVerifyVerReq {
        protocol_ver_min: GDMA_PROTOCOL_V1,
        protocol_ver_max: GDMA_PROTOCOL_V1,
        gd_drv_cap_flags1: GDMA_DRV_CAP_FLAG_1_SELF_RESET_ON_EQE
            | GDMA_DRV_CAP_FLAG_1_HWC_TIMEOUT_RECONFIG,
        os_type: GDMA_OS_TYPE_LINUX,
        ..Default::default()
    };
    body.os_ver_str1[..4].copy_from_slice(b"mana");
    let b = body.as_bytes();
    assert_eq!(b.len(), 600);
    assert_eq!(b[0], 1);
    assert_eq!(b[8], 1);
    assert_eq!(b[16..24], 0x4008u64.to_le_bytes());
    assert_eq!(b[56..60], [0x10, 0, 0, 0]);
    assert_eq!(&b[88..92], b"mana");
    assert_eq!(GdmaVerifyVerReq::read_from_bytes(b), Ok(body));
}

#[test]
fn create_queue_request_bytes() {
    // An EQ of 32 KiB on region 0x1122334455667788, pdid 3, doorbell 5, MSI-X 2, throttle 3.
    let body = GdmaCreateQueueReq {
        queue_type: GDMA_EQ,
        pdid: 3,
        doorbell_id: 5,
        gdma_region: 0x1122_3344_5566_7788,
        queue_size: 32768,
        log2_throttle_limit: LOG2_EQ_THROTTLE,
        eq_pci_msix_index: 2,
        ..Default::default()
    };
    let mut buf = [0u8; 128];
    let n = encode_request(&mut buf, RequestIds::hwc(1, 9), &body, &[]).unwrap();
    assert_eq!(n, 96);
    let b = &buf[40..96];
    assert_eq!(b[0..4], [4, 0, 0, 0]);
    assert_eq!(b[8..16], [3, 0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(b[16..24], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(b[28..40], [0x00, 0x80, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(b[40..56], [0; 16]);
    let req = RequestRef::parse(&buf[..n]).unwrap();
    let back: GdmaCreateQueueReq = req.body().unwrap();
    assert_eq!(back, body);
    assert_eq!(back.queue_type(), Some(crate::queue::GdmaQueueType::Eq));
}

#[test]
fn dma_region_page_lists() {
    // 1100 pages: 504 in CREATE_DMA_REGION, then ADD_PAGES of 505 and 91.
    let pages: Vec<u64> = (0..1100u64).map(|i| 0x10_0000 + i * 4096).collect();
    let (first, rest) = dma_region_batches(&pages);
    assert_eq!(first.len(), 504);
    assert_eq!(rest.map(|c| c.len()).collect::<Vec<_>>(), vec![505, 91]);
    let (first, mut rest) = dma_region_batches(&pages[..3]);
    assert_eq!((first.len(), rest.next()), (3, None));

    let body = GdmaCreateDmaRegionReq {
        length: 3 * 4096,
        offset_in_page: 0,
        gdma_page_type: GDMA_PAGE_TYPE_4K,
        page_count: 3,
        page_addr_list_len: 3,
    };
    let mut buf = [0u8; 4096];
    let n = encode_request(&mut buf, RequestIds::hwc(0, 0), &body, pages[..3].as_bytes()).unwrap();
    assert_eq!(n, 40 + 24 + 24);
    assert_eq!(buf[64..72], 0x10_0000u64.to_le_bytes());
    let req = RequestRef::parse(&buf[..n]).unwrap();
    let got: GdmaCreateDmaRegionReq = req.body().unwrap();
    let list: Vec<u64> =
        read_page_list(req.trailing::<GdmaCreateDmaRegionReq>(), got.page_addr_list_len)
            .unwrap()
            .collect();
    assert_eq!(list, vec![0x10_0000, 0x10_1000, 0x10_2000]);
    assert!(list.iter().all(|&a| is_valid_page_addr(a)));
    assert!(!is_valid_page_addr(0x10_0800));
    assert_eq!(
        read_page_list(req.trailing::<GdmaCreateDmaRegionReq>(), 4).err(),
        Some(DecodeError::Truncated { needed: 32, got: 24 })
    );
    assert!(read_page_list(&[], u32::MAX).is_err());
    // A full CREATE_DMA_REGION fits the 4 KiB request limit exactly.
    let n =
        encode_request(&mut buf, RequestIds::hwc(0, 0), &body, pages[..504].as_bytes()).unwrap();
    assert_eq!(n, HWC_MAX_REQUEST_SIZE);
    let add =
        GdmaDmaRegionAddPagesReq { dma_region_handle: 0x77, page_addr_list_len: 505, reserved3: 0 };
    let n =
        encode_request(&mut buf, RequestIds::hwc(0, 0), &add, pages[504..1009].as_bytes()).unwrap();
    assert_eq!(n, 4096);
}

#[test]
fn list_devices_response() {
    let mana = GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 };
    let resp = GdmaListDevicesResp::from_devices(&[HWC_DEV_ID, GdmaDevId::default(), mana]);
    assert_eq!(resp.num_of_devs, 3);
    assert_eq!(resp.devices().collect::<Vec<_>>(), vec![HWC_DEV_ID, mana]);
    assert_eq!(resp.find(GDMA_DEVICE_MANA), Some(mana));
    assert_eq!(resp.find(GDMA_DEVICE_MANA_IB), None);
    assert_eq!(resp.as_bytes()[..20], [3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
    // An absurd num_of_devs is clamped to the 64 entries present.
    let mut huge = resp;
    huge.num_of_devs = u32::MAX;
    assert_eq!(huge.devices().count(), 2);
}

#[test]
fn register_device_and_reset_hook() {
    let mut buf = [0u8; 64];
    let ids = RequestIds {
        dev_id: GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 },
        hwc_msg_id: 0,
        activity_id: 1,
    };
    let req_len = encode_request(&mut buf, ids, &GdmaRegisterDeviceReq, &[]).unwrap();
    let req = RequestRef::parse(&buf[..req_len]).unwrap();
    let mut out = [0u8; 64];
    let body = GdmaRegisterDeviceResp { pdid: 3, gpa_mkey: 0x1234, db_id: 5 };
    let n = encode_response(&mut out, &req.hdr, GDMA_STATUS_SUCCESS, &body, &[]).unwrap();
    assert_eq!(out[32..44], [3, 0, 0, 0, 0x34, 0x12, 0, 0, 5, 0, 0, 0]);
    assert_eq!(ResponseRef::parse(&out[..n]).unwrap().body_for::<GdmaRegisterDeviceReq>(), body);

    // GENERATE_RESET_REQUEST_EQE (11): body {eq_id, data}; the device posts EQE 135 with data.
    let hook = GdmaGenerateResetRequestEqeReq { eq_id: 2, data: 1 };
    let n = encode_request(&mut buf, RequestIds::hwc(0, 0), &hook, &[]).unwrap();
    assert_eq!(buf[4..8], [11, 0, 0, 0]);
    assert_eq!(buf[40..n], [2, 0, 0, 0, 1, 0, 0, 0]);
    let got: GdmaGenerateResetRequestEqeReq = RequestRef::parse(&buf[..n]).unwrap().body().unwrap();
    let eqe = Event::HwcResetRequest { data: got.data }.to_eqe(1);
    assert_eq!(eqe.info.event_type(), GDMA_EQE_HWC_RESET_REQUEST);
    assert_eq!(eqe.to_dwords(), [1, 0, 0, 0x2000_0087]);
}

#[test]
fn disable_queue_and_destroy_region_bodies() {
    let d = GdmaDisableQueueReq {
        queue_type: GDMA_EQ,
        queue_index: 7,
        alloc_res_id_on_creation: GDMA_ALLOC_RES_ID_ON_CREATION,
    };
    assert_eq!(d.as_bytes(), &[4, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0]);
    let r = GdmaDestroyDmaRegionReq { dma_region_handle: 0x0102_0304_0506_0708 };
    assert_eq!(r.as_bytes(), &[8, 7, 6, 5, 4, 3, 2, 1]);
    let t = GdmaQueryHwcTimeout { timeout_ms: 30_000, reserved: 0 };
    assert_eq!(t.as_bytes(), &[0x30, 0x75, 0, 0, 0, 0, 0, 0]);
}
