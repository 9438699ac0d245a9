//! The responder on its own: hostile and odd requests (the hub's answers are compared
//! with these query by query in `rabble_core::dns::publish`'s tests).

use super::*;
use crate::dns::{Change, NodeRecords, ServiceRecords, Target, ZoneMeta};

fn zone() -> Zone {
    let mut z = Zone::default();
    let meta = ZoneMeta {
        index: 9,
        domain: vec!["rabble".into()],
        ttl: 0,
        negative_ttl: 5,
        a_record_limit: 0,
        datacenters: vec![],
        services: vec!["web".into()],
        nodes: vec!["n1".into()],
    };
    z.apply(Change::Meta(meta));
    let t =
        |i: u8| Target { ip: IpAddr::from([10, 0, 0, i]), port: Some(80), node: Some(format!("n{i}")), tags: vec![] };
    z.apply(Change::Service("web".into(), Some(ServiceRecords { index: 9, targets: (1..=40).map(t).collect() })));
    z.apply(Change::Node(
        "n1".into(),
        Some(NodeRecords { index: 9, ips: vec![IpAddr::from([10, 0, 0, 1])], txt: vec!["a".repeat(300)] }),
    ));
    z
}

/// A query for `name` (dotted, no trailing dot) of `qtype`, optionally with an OPT record.
fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    if let Some(size) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

fn rcode(r: &[u8]) -> u8 {
    r[3] & 0x0F
}

fn count(r: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([r[at], r[at + 1]])
}

#[test]
fn answers_addresses_and_cuts_udp_to_the_buffer() {
    let z = zone();
    let r = answer(&query("web.service.rabble", T_A, None), &z, Transport::Udp, 1).unwrap();
    assert_eq!((&r[..2], rcode(&r), r[2] & 0x84), (&[0x12, 0x34][..], NOERROR, 0x84));
    // 12 + 24 (the question) + 29 × 16 ≤ 512: 29 of the 40, with TC.
    assert_eq!((r.len() <= 512, count(&r, 6), r[2] & 0x02), (true, 29, 0x02));
    let srv = answer(&query("web.service.rabble", T_SRV, None), &z, Transport::Udp, 1).unwrap();
    assert!(srv.len() <= 512 && srv[2] & 0x02 != 0, "TC: 40 SRV records do not fit");
    let big = answer(&query("web.service.rabble", T_SRV, Some(4096)), &z, Transport::Udp, 1).unwrap();
    assert!(
        big[2] & 0x02 == 0 && count(&big, 6) == 40 && count(&big, 10) == 41,
        "all, with their addresses and the OPT"
    );
    let tcp = answer(&query("web.service.rabble", T_SRV, None), &z, Transport::Tcp, 1).unwrap();
    assert_eq!(count(&tcp, 6), 40);
    // Two seeds, two orders (of 40 records, the same order is a 1 in 40! chance).
    let other = answer(&query("web.service.rabble", T_A, None), &z, Transport::Udp, 2).unwrap();
    assert_ne!(r, other);
    // A TXT string over 255 bytes is cut, not an error.
    let txt = answer(&query("n1.node.rabble", T_TXT, None), &z, Transport::Udp, 1).unwrap();
    assert_eq!((rcode(&txt), count(&txt, 6)), (NOERROR, 1));
}

#[test]
fn refuses_what_is_not_its_own_and_never_answers_a_response() {
    let z = zone();
    let r = answer(&query("example.com", T_A, None), &z, Transport::Udp, 1).unwrap();
    assert_eq!((rcode(&r), r[2] & 0x04, count(&r, 6)), (REFUSED, 0, 0));
    let before = answer(&query("web.service.rabble", T_A, None), &Zone::default(), Transport::Udp, 1).unwrap();
    assert_eq!(rcode(&before), REFUSED, "no zone yet");
    let mut resp = query("web.service.rabble", T_A, None);
    resp[2] |= 0x80;
    assert_eq!(answer(&resp, &z, Transport::Udp, 1), None);
    assert_eq!(answer(&[1, 2, 3], &z, Transport::Udp, 1), None);
    let nx = answer(&query("nope.service.rabble", T_A, None), &z, Transport::Udp, 1).unwrap();
    assert_eq!((rcode(&nx), count(&nx, 8)), (NXDOMAIN, 1), "NXDOMAIN with the SOA");
}

#[test]
fn malformed_requests_get_formerr_or_notimp_and_nothing_panics() {
    let z = zone();
    let good = query("web.service.rabble", T_A, Some(1232));
    let mut notify = good.clone();
    notify[2] = 0x20; // opcode 4
    assert_eq!(rcode(&answer(&notify, &z, Transport::Udp, 1).unwrap()), NOTIMP);
    let mut two = good.clone();
    two[5] = 2;
    assert_eq!(rcode(&answer(&two, &z, Transport::Udp, 1).unwrap()), FORMERR);
    let mut pointer = good.clone();
    pointer[12] = 0xC0; // a compressed question name
    assert_eq!(rcode(&answer(&pointer, &z, Transport::Udp, 1).unwrap()), FORMERR);
    let mut loops = good.clone();
    loops[9] = 200; // 200 authority records that are not there
    assert_eq!(rcode(&answer(&loops, &z, Transport::Udp, 1).unwrap()), FORMERR);
    // Every truncation and every byte flipped: an answer or nothing, never a panic, and
    // never more than a UDP client allows.
    for cut in 0..good.len() {
        let _ = answer(&good[..cut], &z, Transport::Udp, 1);
    }
    for i in 0..good.len() {
        for v in [0u8, 1, 0x3F, 0x40, 0x7F, 0xC0, 0xFF] {
            let mut b = good.clone();
            b[i] = v;
            if let Some(r) = answer(&b, &z, Transport::Udp, 1) {
                assert!(r.len() <= 4096 && r.len() >= 12);
            }
        }
    }
}

#[test]
fn hex_addresses_round_trip() {
    for ip in ["192.168.0.1", "fd00::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(parse_hex_addr(&hex_addr(ip)), Some(ip));
    }
    for bad in ["", "c0a8000", "zzzzzzzz", "c0a800011", "é0a80001"] {
        assert_eq!(parse_hex_addr(bad), None, "{bad}");
    }
}
