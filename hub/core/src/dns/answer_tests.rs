//! Answers, record by record: the Consul semantics the issue lists.

use super::*;
use crate::catalog::Catalog;
use crate::dns::fixture::add;
use hickory_proto::op::Query;
use rabble_shared::Status;

fn settings(domain: &str) -> DnsSettings {
    DnsSettings {
        domain: DnsSettings::domain_labels(domain).unwrap(),
        ttl: 0,
        negative_ttl: 5,
        only_passing: false,
        a_record_limit: 0,
    }
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    add(&mut c, "pi1", "192.168.1.1", "web", &["primary"], None, Status::Passing);
    add(&mut c, "pi2", "192.168.1.2", "web", &[], None, Status::Warning);
    add(&mut c, "pi3", "192.168.1.3", "web", &[], None, Status::Critical);
    add(&mut c, "pi4", "192.168.1.4", "db", &[], Some("fd00::4"), Status::Passing);
    c
}

fn ask(zone: &Zone, s: &DnsSettings, name: &str, qtype: RecordType) -> Message {
    ask_with(zone, s, name, qtype, Transport::Udp, None)
}

fn ask_with(zone: &Zone, s: &DnsSettings, name: &str, qtype: RecordType, t: Transport, edns: Option<u16>) -> Message {
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        q.edns = Some(e);
    }
    match answer(&q.to_vec().unwrap(), zone, s, t, false) {
        Outcome::Reply(b) => Message::from_vec(&b).unwrap(),
        other => panic!("{name}: {other:?}"),
    }
}

fn ips(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn service_a_records_skip_critical_and_serve_warning() {
    let s = settings("rabble");
    let z = Zone::build(&catalog(), &s);
    let m = ask(&z, &s, "web.service.rabble.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(ips(&m), ["192.168.1.1", "192.168.1.2"]);
    assert_eq!(m.answers[0].ttl, 0);
    let strict = DnsSettings { only_passing: true, ..s.clone() };
    let z2 = Zone::build(&catalog(), &strict);
    assert_eq!(ips(&ask(&z2, &strict, "web.service.rabble.", RecordType::A)), ["192.168.1.1"]);
    // Case-insensitive, and the question is echoed as asked.
    let m = ask(&z, &s, "WEB.Service.RABBLE.", RecordType::A);
    assert_eq!(ips(&m).len(), 2);
    assert_eq!(m.answers[0].name.to_ascii(), "WEB.Service.RABBLE.");
}

#[test]
fn tags_srv_and_rfc2782() {
    let s = settings("rabble");
    let z = Zone::build(&catalog(), &s);
    assert_eq!(ips(&ask(&z, &s, "primary.web.service.rabble.", RecordType::A)), ["192.168.1.1"]);
    assert_eq!(ask(&z, &s, "nope.web.service.rabble.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    for name in ["web.service.rabble.", "_web._tcp.service.rabble.", "_web._primary.service.rabble."] {
        let m = ask(&z, &s, name, RecordType::SRV);
        assert!(!m.answers.is_empty(), "{name}");
        for r in &m.answers {
            let RData::SRV(srv) = &r.data else { panic!("{r:?}") };
            assert_eq!(srv.port, 8080);
            let target = srv.target.to_ascii();
            assert!(target.ends_with(".node.rabble."), "{target}");
            assert!(m.additionals.iter().any(|a| a.name.to_ascii() == target), "no additional for {target}");
        }
    }
    assert_eq!(ask(&z, &s, "_web._primary.service.rabble.", RecordType::SRV).answers.len(), 1);
    // An instance address that is not its node's gets an .addr. target that resolves.
    let m = ask(&z, &s, "db.service.rabble.", RecordType::SRV);
    let RData::SRV(srv) = &m.answers[0].data else { panic!() };
    let target = srv.target.to_ascii();
    assert!(target.ends_with(".addr.rabble."), "{target}");
    assert_eq!(ips(&ask(&z, &s, &target, RecordType::AAAA)), ["fd00::4"]);
}

#[test]
fn nodes_have_addresses_and_meta_txt() {
    let s = settings("rabble");
    let z = Zone::build(&catalog(), &s);
    assert_eq!(ips(&ask(&z, &s, "pi3.node.rabble.", RecordType::A)), ["192.168.1.3"]);
    let txt = ask(&z, &s, "pi3.node.rabble.", RecordType::TXT);
    let RData::TXT(t) = &txt.answers[0].data else { panic!() };
    assert_eq!(t.to_string(), "rack=top");
    assert_eq!(ips(&ask(&z, &s, "pi3.node.home.rabble.", RecordType::A)), ["192.168.1.3"], "datacenter form");
    assert_eq!(ips(&ask(&z, &s, "web.service.home.rabble.", RecordType::A)).len(), 2);
}

#[test]
fn negative_answers_carry_an_soa() {
    let s = settings("lab.home.arpa");
    let z = Zone::build(&catalog(), &s);
    let nx = ask(&z, &s, "missing.service.lab.home.arpa.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let soa = &nx.authorities[0];
    assert_eq!((soa.name.to_ascii().as_str(), soa.ttl), ("lab.home.arpa.", 5));
    let nodata = ask(&z, &s, "web.service.lab.home.arpa.", RecordType::AAAA);
    assert_eq!((nodata.metadata.response_code, nodata.answers.len()), (ResponseCode::NoError, 0));
    assert!(matches!(nodata.authorities[0].data, RData::SOA(_)));
    assert_eq!(ask(&z, &s, "x.y.lab.home.arpa.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    // A service whose only instances are critical does not exist, as in Consul.
    let mut c = Catalog::default();
    add(&mut c, "pi1", "192.168.1.1", "plex", &[], None, Status::Critical);
    let z = Zone::build(&c, &s);
    assert_eq!(
        ask(&z, &s, "plex.service.lab.home.arpa.", RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn outside_the_domain_is_refused_or_forwarded() {
    let s = settings("rabble");
    let z = Zone::build(&catalog(), &s);
    assert_eq!(ask(&z, &s, "example.com.", RecordType::A).metadata.response_code, ResponseCode::Refused);
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii("example.com.").unwrap(), RecordType::A));
    assert_eq!(answer(&q.to_vec().unwrap(), &z, &s, Transport::Udp, true), Outcome::Forward);
}

#[test]
fn big_answers_truncate_over_udp_and_not_over_tcp() {
    let s = settings("rabble");
    let mut c = Catalog::default();
    for i in 0..60 {
        add(&mut c, &format!("n{i}"), &format!("10.0.0.{i}"), "big", &[], None, Status::Passing);
    }
    let z = Zone::build(&c, &s);
    let udp = ask(&z, &s, "big.service.rabble.", RecordType::A);
    assert!(udp.metadata.truncation);
    assert!(udp.to_vec().unwrap().len() <= 512 && !udp.answers.is_empty());
    let edns = ask_with(&z, &s, "big.service.rabble.", RecordType::A, Transport::Udp, Some(4096));
    assert!(!edns.metadata.truncation && edns.answers.len() == 60);
    let tcp = ask_with(&z, &s, "big.service.rabble.", RecordType::A, Transport::Tcp, None);
    assert_eq!((tcp.metadata.truncation, tcp.answers.len()), (false, 60));
    let limited = DnsSettings { a_record_limit: 3, ..s.clone() };
    assert_eq!(ask(&z, &limited, "big.service.rabble.", RecordType::A).answers.len(), 3);
}

#[test]
fn hostile_input_gets_an_error_or_nothing() {
    let s = settings("rabble");
    let z = Zone::build(&catalog(), &s);
    assert_eq!(answer(b"", &z, &s, Transport::Udp, false), Outcome::Drop);
    assert_eq!(answer(b"\x12\x34", &z, &s, Transport::Udp, false), Outcome::Drop);
    // A header claiming 65535 questions, then nothing.
    let absurd = [0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
    let Outcome::Reply(r) = answer(&absurd, &z, &s, Transport::Udp, false) else { panic!() };
    let r = Message::from_vec(&r).unwrap();
    assert_eq!((r.metadata.id, r.metadata.response_code), (0x1234, ResponseCode::FormErr));
    // A name that points at itself (a compression loop).
    let mut lp = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert!(matches!(answer(&lp, &z, &s, Transport::Udp, false), Outcome::Reply(_)));
    // A response packet is never answered.
    let mut resp = absurd;
    resp[2] |= 0x80;
    assert_eq!(answer(&resp, &z, &s, Transport::Udp, false), Outcome::Drop);
}

/// The fast path must answer exactly as the general path does (up to record order).
#[test]
fn fast_path_matches_the_general_path() {
    // A TTL that is not the default, so a path that ignores the setting shows.
    let s = DnsSettings { ttl: 37, ..settings("lab.home.arpa") };
    let z = Zone::build(&catalog(), &s);
    let mut fast_hits = 0;
    for name in [
        "web.service.lab.home.arpa.",
        "WEB.Service.Lab.HOME.arpa.",
        "db.service.lab.home.arpa.",
        "nope.service.lab.home.arpa.",
    ] {
        for qtype in [RecordType::A, RecordType::AAAA] {
            for edns in [None, Some(1232)] {
                for recursion in [false, true] {
                    let mut q = Message::query();
                    q.metadata.recursion_desired = recursion;
                    q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
                    if let Some(size) = edns {
                        let mut e = Edns::new();
                        e.set_max_payload(size);
                        q.edns = Some(e);
                    }
                    let req = q.to_vec().unwrap();
                    let Outcome::Reply(general) = general(&req, &z, &s, Transport::Udp, recursion) else { panic!() };
                    let Outcome::Reply(got) = answer(&req, &z, &s, Transport::Udp, recursion) else { panic!() };
                    if crate::dns::fast::answer(&req, &z, &s.domain, true, recursion, 0).is_some() {
                        fast_hits += 1;
                    }
                    let (g, f) = (Message::from_vec(&general).unwrap(), Message::from_vec(&got).unwrap());
                    assert_eq!(g.metadata, f.metadata, "{name} {qtype:?} {edns:?}");
                    assert_eq!(g.queries, f.queries);
                    assert_eq!(ips(&g), ips(&f), "{name} {qtype:?}");
                    let name_ttl = |m: &Message| {
                        let mut v: Vec<(String, u32)> =
                            m.answers.iter().map(|r| (r.name.to_ascii().to_ascii_lowercase(), r.ttl)).collect();
                        v.sort();
                        v
                    };
                    assert_eq!(name_ttl(&g), name_ttl(&f), "{name} {qtype:?}: names and TTLs");
                    assert!(f.answers.iter().all(|r| r.ttl == 37), "{name} {qtype:?}: the configured TTL");
                    for r in &f.answers {
                        assert_eq!(r.name.to_ascii(), name, "the name comes back as asked");
                    }
                    assert_eq!(g.edns.is_some(), f.edns.is_some());
                    assert_eq!(g.authorities, f.authorities);
                }
            }
        }
    }
    assert!(fast_hits >= 8, "the fast path served {fast_hits} queries");
}
