//! Tests of the MANA Ethernet bodies (§6.4): exact byte positions and version handling.

use super::*;
use crate::queue::{GDMA_RQ, GDMA_SQ};

fn mana_ids(hwc_msg_id: u16) -> RequestIds {
    RequestIds {
        dev_id: GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 },
        hwc_msg_id,
        activity_id: 0x55,
    }
}

#[test]
fn request_metadata() {
    assert_eq!(<ManaQueryDeviceCfgReq as HwcRequest>::MSG_TYPE, 0x20001);
    assert_eq!(<ManaQueryDeviceCfgReq as HwcRequest>::RESP_VERSION, GDMA_MESSAGE_V4);
    assert_eq!(<ManaQueryGfStatReq as HwcRequest>::MSG_TYPE, 0x20002);
    assert_eq!(<ManaConfigVportTxReq as HwcRequest>::MSG_TYPE, 0x20003);
    assert_eq!(<ManaCreateWqObjReq as HwcRequest>::MSG_TYPE, 0x20004);
    assert_eq!(<ManaDestroyWqObjReq as HwcRequest>::MSG_TYPE, 0x20005);
    assert_eq!(<ManaFenceRqReq as HwcRequest>::MSG_TYPE, 0x20006);
    assert_eq!(<ManaCfgRxSteerReqV2 as HwcRequest>::MSG_TYPE, 0x20007);
    assert_eq!(<ManaCfgRxSteerReqV2 as HwcRequest>::REQ_VERSION, GDMA_MESSAGE_V2);
    assert_eq!(<ManaQueryVportCfgReq as HwcRequest>::MSG_TYPE, 0x20008);
    let h = request_header::<ManaQueryVportCfgReq>(mana_ids(0), 0);
    assert_eq!((h.req.msg_size, h.resp.msg_size), (44, 64));
    let h = request_header::<ManaQueryGfStatReq>(mana_ids(0), 0);
    assert_eq!((h.req.msg_size, h.resp.msg_size), (48, 32 + 224));
}

#[test]
fn query_dev_config_versions() {
    let req = ManaQueryDeviceCfgReq {
        proto_major_ver: MANA_MAJOR_VERSION,
        proto_minor_ver: MANA_MINOR_VERSION,
        proto_micro_ver: MANA_MICRO_VERSION,
        ..Default::default()
    };
    assert_eq!(req.as_bytes()[32..48], [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    let mut buf = [0u8; 128];
    let n = encode_request(&mut buf, mana_ids(0), &req, &[]).unwrap();
    let rq = RequestRef::parse(&buf[..n]).unwrap();
    assert_eq!(rq.hdr.resp.msg_version, 4);

    // A v1 response (40-byte body) leaves the MTU 0: use 1514.
    let full = ManaQueryDeviceCfgResp {
        max_num_vports: 1,
        max_num_eqs: 16,
        adapter_mtu: 9014,
        adapter_link_speed_mbps: 100_000,
        ..Default::default()
    };
    let mut out = [0u8; 128];
    let m = encode_response(&mut out, &rq.hdr, 0, &full, &[]).unwrap();
    assert_eq!(m, 80);
    assert_eq!(
        out[32 + 32..32 + 48],
        [1, 0, 0, 0, 16, 0, 0, 0, 0x36, 0x23, 0, 0, 0xA0, 0x86, 0x01, 0x00]
    );
    let v4 = ResponseRef::parse(&out[..m]).unwrap().body_for::<ManaQueryDeviceCfgReq>();
    assert_eq!(v4.effective_adapter_mtu(), 9014);
    let m1 = encode_response(&mut out, &rq.hdr, 0, &full, &[]).unwrap() - 8;
    out[12..16].copy_from_slice(&(m1 as u32).to_le_bytes());
    let v1 = ResponseRef::parse(&out[..m1]).unwrap().body_for::<ManaQueryDeviceCfgReq>();
    assert_eq!((v1.max_num_vports, v1.adapter_mtu, v1.effective_adapter_mtu()), (1, 0, 1514));
}

#[test]
fn vport_tx_and_wq_object_bytes() {
    let tx = ManaConfigVportTxReq { vport: 0xAA, pdid: 3, doorbell_pageid: 5 };
    assert_eq!(tx.as_bytes(), &[0xAA, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0]);
    let resp = ManaConfigVportTxResp::read_from_bytes(&[0x2C, 0x01, 1, 0]).unwrap();
    assert_eq!((resp.tx_vport_offset, resp.short_form_allowed), (300, 1));

    let wq = ManaCreateWqObjReq {
        vport: 0xAA,
        wq_type: GDMA_SQ,
        wq_gdma_region: 0x11,
        cq_gdma_region: 0x22,
        wq_size: 16384,
        cq_size: 16384,
        cq_moderation_ctx_id: 0,
        cq_parent_qid: 2,
        ..Default::default()
    };
    let b = wq.as_bytes();
    assert_eq!(b[8..12], [1, 0, 0, 0]);
    assert_eq!(b[16], 0x11);
    assert_eq!(b[24], 0x22);
    assert_eq!(b[32..48], [0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(wq.wq_type(), Some(GdmaQueueType::Sq));
    let r = ManaCreateWqObjResp { wq_id: 24, cq_id: 25, wq_obj: 0x1000_0001 };
    assert_eq!(r.as_bytes(), &[24, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0]);
    let d = ManaDestroyWqObjReq { wq_type: GDMA_RQ, reserved: 0, wq_obj_handle: 0x1000_0001 };
    assert_eq!(d.as_bytes(), &[2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0]);
    assert_eq!(ManaFenceRqReq { wq_obj_handle: 9 }.as_bytes(), &[9, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn query_vport_config_response() {
    let r = ManaQueryVportCfgResp {
        max_num_sq: 1,
        max_num_rq: 1,
        num_indirection_ent: 128,
        mac_addr: [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03],
        vport: 0xAA,
        ..Default::default()
    };
    let b = r.as_bytes();
    assert_eq!(b[8..12], [128, 0, 0, 0]);
    assert_eq!(b[16..24], [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03, 0, 0]);
    assert_eq!(b[24..32], [0xAA, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ManaQueryVportCfgResp::read_from_bytes(b).unwrap(), r);
}

#[test]
fn config_vport_rx_v2_round_trip() {
    let body = ManaCfgRxSteerReqV2 {
        vport: 0xAA,
        rx_enable: tristate(Some(true)),
        rss_enable: tristate(Some(true)),
        update_default_rxobj: 1,
        update_hashkey: 1,
        update_indir_tab: 1,
        default_rxobj: 0x100,
        hashkey: crate::rss::MANA_DEFAULT_RSS_KEY,
        cqe_coalescing_enable: 1,
        ..Default::default()
    };
    let table = [0x100u64, 0x200, 0x100, 0x200];
    let mut buf = [0u8; 512];
    let n = encode_config_vport_rx(&mut buf, mana_ids(2), &body, &table).unwrap();
    assert_eq!(n, 40 + 80 + 32);
    let b = &buf[40..];
    assert_eq!(b[8..24], [4, 0, 120, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
    assert_eq!(b[32..36], [0x2c, 0xc6, 0x81, 0xd1]);
    assert_eq!(b[72], 1);
    assert_eq!(buf[120..128], 0x100u64.to_le_bytes());
    assert_eq!(buf[4..10], [0x07, 0x00, 0x02, 0x00, 0x02, 0x00]); // msg_type 0x20007, version 2

    let rq = RequestRef::parse(&buf[..n]).unwrap();
    let cfg = ConfigVportRx::decode(&rq).unwrap();
    assert_eq!(cfg.table, table.to_vec());
    assert_eq!(cfg.req.cqe_coalescing_enable, 1);
    assert_eq!(tristate_value(cfg.req.rx_enable), Some(true));
    assert_eq!(cfg.req.hashkey, crate::rss::MANA_DEFAULT_RSS_KEY);

    let too_big = vec![0u64; MANA_INDIRECT_TABLE_MAX_SIZE + 1];
    assert!(encode_config_vport_rx(&mut [0u8; 8192], mana_ids(0), &body, &too_big).is_err());
}

#[test]
fn config_vport_rx_v1_layout_is_accepted() {
    // OVMM-style v1 request: 72-byte body, table at offset 112, no coalescing byte.
    let mut body = ManaCfgRxSteerReqV2 {
        vport: 0xAA,
        num_indir_entries: 2,
        indir_tab_offset: 112,
        rx_enable: TRI_STATE_TRUE,
        rss_enable: TRI_STATE_FALSE,
        update_indir_tab: 1,
        ..Default::default()
    };
    body.hashkey[0] = 0x6d;
    let mut msg = Vec::new();
    let hdr = GdmaReqHdr {
        req: GdmaMsgHdr {
            hdr_type: 0,
            msg_type: MANA_CONFIG_VPORT_RX,
            msg_version: 1,
            hwc_msg_id: 0,
            msg_size: 128,
        },
        resp: GdmaMsgHdr {
            hdr_type: 0,
            msg_type: MANA_CONFIG_VPORT_RX,
            msg_version: 1,
            hwc_msg_id: 0,
            msg_size: 32,
        },
        dev_id: GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 },
        activity_id: 0,
    };
    msg.extend_from_slice(hdr.as_bytes());
    msg.extend_from_slice(&body.as_bytes()[..MANA_CFG_RX_STEER_V1_SIZE]);
    msg.extend_from_slice(&0x1111u64.to_le_bytes()); // table[0] sits where v2's coalescing byte is
    msg.extend_from_slice(&0x2222u64.to_le_bytes());
    assert_eq!(msg.len(), 128);
    let cfg = ConfigVportRx::decode(&RequestRef::parse(&msg).unwrap()).unwrap();
    assert_eq!(cfg.table, vec![0x1111, 0x2222]);
    assert_eq!(cfg.req.cqe_coalescing_enable, 0);
    assert_eq!(tristate_value(cfg.req.rss_enable), Some(false));
    assert_eq!(cfg.req.hashkey[0], 0x6d);

    // Table pointing past the end, or a body too short: errors, not panics.
    msg[40 + 10] = 200;
    assert!(ConfigVportRx::decode(&RequestRef::parse(&msg).unwrap()).is_err());
    let short = RequestRef { hdr, body: &msg[40..100] };
    assert_eq!(
        ConfigVportRx::decode(&short),
        Err(DecodeError::Truncated { needed: 112, got: 100 })
    );
    assert_eq!(tristate_value(TRI_STATE_UNKNOWN), None);
    assert_eq!(tristate(None), 0xFFFF_FFFF);
}

#[test]
fn query_gf_stat_layout() {
    assert_eq!(STATISTICS_FLAGS_ALL, 0x07FF_FFFF);
    assert_eq!(STATISTICS_FLAGS_TX_ERRORS_GDMA_ERROR, 0x0400_0000);
    assert_eq!(STATISTICS_FLAGS_HC_TX_BCAST_BYTES, 0x0200_0000);
    let r = ManaQueryGfStatResp {
        reported_stats: STATISTICS_FLAGS_ALL,
        rx_discards_nowqe: 7,
        hc_rx_ucast_pkts: 10,
        hc_tx_bytes: 1500,
        tx_err_gdma: 1,
        ..Default::default()
    };
    let b = r.as_bytes();
    assert_eq!(b.len(), 224);
    assert_eq!(b[8], 7);
    assert_eq!(b[32], 10);
    assert_eq!(b[160..162], [0xDC, 0x05]);
    assert_eq!(b[216], 1);
    assert_eq!(
        ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL }.as_bytes(),
        &[0xFF, 0xFF, 0xFF, 0x07, 0, 0, 0, 0]
    );
}
