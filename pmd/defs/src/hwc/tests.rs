//! Byte-level tests of HWC message framing (§6.2).

use super::*;
use crate::msgs_gdma::{
    GdmaGenerateTestEventReq, GdmaQueryMaxResourcesReq, GdmaQueryMaxResourcesResp,
};

/// GENERATE_TEST_EQE on EQ 5, slot 0, activity 0x1234, as 44 bytes derived from the tables.
const TEST_EQE_REQUEST: [u8; 44] = [
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, // req
    0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00,
    0x00, // resp
    0x01, 0x00, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00, // dev_id {HWC, 0}, activity_id
    0x05, 0x00, 0x00, 0x00, // queue_index
];

#[test]
fn request_header_round_trip() {
    let mut buf = [0u8; 64];
    let n = encode_request(
        &mut buf,
        RequestIds::hwc(0, 0x1234),
        &GdmaGenerateTestEventReq { queue_index: 5 },
        &[],
    )
    .unwrap();
    assert_eq!(n, 44);
    assert_eq!(buf[..44], TEST_EQE_REQUEST);

    let req = RequestRef::parse(&buf).unwrap(); // trailing garbage beyond msg_size is ignored
    assert_eq!(req.msg_type(), GDMA_GENERATE_TEST_EQE);
    assert_eq!(req.hdr.req.msg_size, 44);
    assert_eq!(req.hdr.resp.msg_size, 32);
    assert_eq!(req.hdr.dev_id, HWC_DEV_ID);
    assert_eq!(req.hdr.activity_id, 0x1234);
    assert_eq!(req.body.len(), 4);
    assert_eq!(
        req.body::<GdmaGenerateTestEventReq>(),
        Ok(GdmaGenerateTestEventReq { queue_index: 5 })
    );
    assert_eq!(req.hdr.as_bytes(), &TEST_EQE_REQUEST[..40]);
    assert_eq!(GdmaReqHdr::read_from_bytes(&TEST_EQE_REQUEST[..40]).unwrap(), req.hdr);
}

#[test]
fn response_echoes_request_ids() {
    let ids = RequestIds {
        dev_id: GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 },
        hwc_msg_id: 7,
        activity_id: 0xABCD_0001,
    };
    let mut buf = [0u8; 128];
    let n = encode_request(&mut buf, ids, &GdmaQueryMaxResourcesReq, &[]).unwrap();
    assert_eq!(n, 40);
    let req = RequestRef::parse(&buf[..n]).unwrap();
    assert_eq!(req.hdr.req.hwc_msg_id, 7);
    assert_eq!(req.hdr.resp.msg_size, 72);
    assert!(req.body.is_empty());

    let body = GdmaQueryMaxResourcesResp {
        max_sq: 8,
        max_rq: 8,
        max_cq: 16,
        max_eq: 4,
        max_msix: 5,
        ..Default::default()
    };
    let mut out = [0u8; 256];
    let m = encode_response(&mut out, &req.hdr, GDMA_STATUS_SUCCESS, &body, &[]).unwrap();
    assert_eq!(m, 72);
    assert_eq!(
        out[..32],
        [
            0, 0, 0, 0, 0x02, 0, 0, 0, 0x01, 0x00, 0x07, 0x00, 0x48, 0, 0, 0, // response hdr
            0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0xCD, 0xAB, // dev_id {MANA, 0}, activity_id
            0, 0, 0, 0, 0, 0, 0, 0 // status, reserved
        ]
    );
    let resp = ResponseRef::parse(&out[..m]).unwrap();
    assert!(resp.hdr.is_success());
    assert!(resp.hdr.matches(&req.hdr));
    assert_eq!(resp.body_for::<GdmaQueryMaxResourcesReq>(), body);
    assert_eq!(resp.body::<GdmaQueryMaxResourcesResp>(), Ok(body));

    let mut other = req.hdr;
    other.activity_id ^= 1;
    assert!(!resp.hdr.matches(&other));
    other = req.hdr;
    other.req.hwc_msg_id = 8;
    assert!(!resp.hdr.matches(&other));
}

#[test]
fn error_response_is_header_only() {
    let req = RequestRef::parse(&TEST_EQE_REQUEST).unwrap();
    let mut out = [0u8; 32];
    let m = encode_response(&mut out, &req.hdr, GDMA_STATUS_CMD_UNSUPPORTED, &(), &[]).unwrap();
    assert_eq!(m, 32);
    let resp = ResponseRef::parse(&out).unwrap();
    assert!(!resp.hdr.is_success());
    assert_eq!(resp.hdr.status, 0xFFFF_FFFF);
    assert_eq!(resp.hdr.response.msg_size, 32);
    // A header-only response zero-extends to any body type.
    assert_eq!(resp.body_for::<GdmaQueryMaxResourcesReq>(), GdmaQueryMaxResourcesResp::default());
    assert_eq!(
        resp.body::<GdmaQueryMaxResourcesResp>(),
        Err(DecodeError::Truncated { needed: 40, got: 0 })
    );
    assert_eq!(GDMA_STATUS_MORE_ENTRIES, 0x105);
}

#[test]
fn parse_rejects_malformed_messages() {
    assert_eq!(
        RequestRef::parse(&TEST_EQE_REQUEST[..39]),
        Err(DecodeError::Truncated { needed: 40, got: 39 })
    );
    let mut bad = TEST_EQE_REQUEST;
    bad[12] = 30; // msg_size smaller than the header
    assert_eq!(
        RequestRef::parse(&bad),
        Err(DecodeError::InvalidField { field: "msg_size", value: 30 })
    );
    bad[12] = 100; // msg_size beyond the buffer
    assert_eq!(RequestRef::parse(&bad), Err(DecodeError::Truncated { needed: 100, got: 44 }));
    bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(RequestRef::parse(&bad).is_err());
    // Body shorter than the body type.
    let mut short = TEST_EQE_REQUEST;
    short[12] = 42;
    let req = RequestRef::parse(&short).unwrap();
    assert_eq!(
        req.body::<GdmaGenerateTestEventReq>(),
        Err(DecodeError::Truncated { needed: 4, got: 2 })
    );
    assert_eq!(
        req.body_zero_extended::<GdmaGenerateTestEventReq>(),
        GdmaGenerateTestEventReq { queue_index: 5 }
    );
    assert_eq!(ResponseRef::parse(&[0u8; 31]), Err(DecodeError::Truncated { needed: 32, got: 31 }));
}

#[test]
fn request_byte_ranges() {
    let req = RequestRef::parse(&TEST_EQE_REQUEST).unwrap();
    assert_eq!(req.bytes_at(40, 4), Ok(&[5u8, 0, 0, 0][..]));
    assert_eq!(req.bytes_at(41, 4), Err(DecodeError::Truncated { needed: 45, got: 44 }));
    assert_eq!(req.bytes_at(8, 4), Err(DecodeError::InvalidField { field: "offset", value: 8 }));
    assert!(req.bytes_at(40, usize::MAX).is_err());
    assert_eq!(req.trailing::<u16>(), &[0u8, 0][..]);
    assert_eq!(req.trailing::<[u8; 8]>(), &[] as &[u8]);
    let mut small = [0u8; 43];
    assert_eq!(
        encode_request(
            &mut small,
            RequestIds::hwc(0, 0),
            &GdmaGenerateTestEventReq { queue_index: 5 },
            &[]
        ),
        Err(EncodeError::BufferTooSmall { needed: 44, got: 43 })
    );
    assert_eq!(GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 1 }.as_u32(), 0x0001_0002);
}
