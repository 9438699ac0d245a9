//! Answering one DNS request from the zone, with Consul's semantics: service, tag,
//! RFC 2782 SRV, node and `.addr.` lookups; NXDOMAIN vs NODATA with an SOA; UDP
//! truncation. Pure (bytes in, bytes out), so it is unit-tested and fuzzed directly.

use super::zone::{DnsSettings, Target, Zone, parse_hex_addr};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    /// Outside our domain and recursors are configured: relay it.
    Forward,
    /// Not worth an answer (a response, or too short to carry an id).
    Drop,
}

/// The transport the request came on: UDP answers are cut to the client's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What a name resolves to before it becomes records.
enum Found {
    Records { answers: Vec<Record>, additionals: Vec<Record> },
    NoData,
    NxDomain,
}

/// An error reply that echoes the request's id (and question, when it parsed).
pub fn error_reply(req: &[u8], code: ResponseCode) -> Outcome {
    if req.len() < 12 {
        return Outcome::Drop;
    }
    let id = u16::from_be_bytes([req[0], req[1]]);
    let mut m = Message::error_msg(id, OpCode::Query, code);
    m.metadata.recursion_desired = req[2] & 0x01 != 0;
    m.to_vec().map(Outcome::Reply).unwrap_or(Outcome::Drop)
}

pub fn answer(req: &[u8], zone: &Zone, s: &DnsSettings, transport: Transport, recursion: bool) -> Outcome {
    if let Some(r) = super::fast::answer(req, zone, &s.domain, transport == Transport::Udp, recursion, s.a_record_limit)
    {
        return Outcome::Reply(r);
    }
    general(req, zone, s, transport, recursion)
}

/// The general path: every query the fast path passes on.
pub fn general(req: &[u8], zone: &Zone, s: &DnsSettings, transport: Transport, recursion: bool) -> Outcome {
    if req.len() >= 3 && req[2] & 0x80 != 0 {
        return Outcome::Drop; // a response: never answer one (no reflection loops)
    }
    let Ok(msg) = Message::from_vec(req) else { return error_reply(req, ResponseCode::FormErr) };
    if msg.metadata.op_code != OpCode::Query {
        return error_reply(req, ResponseCode::NotImp);
    }
    if msg.queries.len() != 1 {
        return error_reply(req, ResponseCode::FormErr);
    }
    let q = &msg.queries[0];
    let labels: Vec<String> = q.name().iter().map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
    let dl = s.domain.len();
    if labels.len() < dl || labels[labels.len() - dl..] != s.domain[..] {
        if recursion {
            return Outcome::Forward;
        }
        return reply(&msg, recursion, ResponseCode::Refused, vec![], vec![], vec![], transport);
    }
    let rest = &labels[..labels.len() - dl];
    let found = resolve(rest, q.name(), q.query_type(), zone, s);
    let (code, answers, additionals, authority) = match found {
        Found::Records { answers, additionals } => (ResponseCode::NoError, answers, additionals, vec![]),
        Found::NoData => (ResponseCode::NoError, vec![], vec![], vec![soa(zone, s)]),
        Found::NxDomain => (ResponseCode::NXDomain, vec![], vec![], vec![soa(zone, s)]),
    };
    reply(&msg, recursion, code, answers, additionals, authority, transport)
}

fn reply(
    req: &Message,
    recursion: bool,
    code: ResponseCode,
    answers: Vec<Record>,
    additionals: Vec<Record>,
    authorities: Vec<Record>,
    transport: Transport,
) -> Outcome {
    let mut m = Message::response(req.metadata.id, OpCode::Query);
    m.metadata.message_type = MessageType::Response;
    m.metadata.authoritative = code != ResponseCode::Refused;
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.recursion_available = recursion;
    m.metadata.response_code = code;
    m.queries = req.queries.clone();
    m.answers = answers;
    m.additionals = additionals;
    m.authorities = authorities;
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.edns = Some(e);
    }
    let limit = match transport {
        Transport::Udp => usize::from(req.max_payload()),
        Transport::Tcp => usize::from(u16::MAX),
    };
    fit(m, limit).map(Outcome::Reply).unwrap_or(Outcome::Drop)
}

/// Serialises `m` within `limit` bytes: drops additionals first, then as many answers
/// as needed, setting TC when any answer had to go.
fn fit(mut m: Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = m.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    m.additionals.clear();
    if let Ok(b) = m.to_vec() {
        if b.len() <= limit {
            return Some(b);
        }
    }
    m.metadata.truncation = true;
    let all = std::mem::take(&mut m.answers);
    let (mut lo, mut hi) = (0usize, all.len()); // the answer count that fits is in [lo, hi)
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        m.answers = all[..mid].to_vec();
        match m.to_vec() {
            Ok(b) if b.len() <= limit => lo = mid,
            _ => hi = mid,
        }
    }
    m.answers = all[..lo].to_vec();
    m.to_vec().ok()
}

fn soa(zone: &Zone, s: &DnsSettings) -> Record {
    let apex = Name::from_ascii(s.domain_name()).unwrap_or_else(|_| Name::root());
    let ns = Name::from_ascii(format!("ns.{}", s.domain_name())).unwrap_or_else(|_| Name::root());
    let mbox = Name::from_ascii(format!("hostmaster.{}", s.domain_name())).unwrap_or_else(|_| Name::root());
    let data = SOA::new(ns, mbox, zone.index as u32, 3600, 600, 86400, s.negative_ttl);
    Record::from_rdata(apex, s.negative_ttl, RData::SOA(data))
}

fn addr_record(name: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v) => Record::from_rdata(name.clone(), ttl, RData::A(A(v))),
        IpAddr::V6(v) => Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v))),
    }
}

fn wants(ip: &IpAddr, qtype: RecordType) -> bool {
    matches!(
        (ip, qtype),
        (IpAddr::V4(_), RecordType::A | RecordType::ANY) | (IpAddr::V6(_), RecordType::AAAA | RecordType::ANY)
    )
}

/// Strips a known datacenter label: `<...>.<kind>.<dc>` → `<...>.<kind>`.
fn strip_dc<'a>(rest: &'a [String], zone: &Zone) -> &'a [String] {
    match rest {
        [head @ .., kind, dc] if (kind == "service" || kind == "node") && zone.datacenters.contains(dc) => {
            &rest[..head.len() + 1]
        }
        _ => rest,
    }
}

fn resolve(rest: &[String], qname: &Name, qtype: RecordType, zone: &Zone, s: &DnsSettings) -> Found {
    let rest = strip_dc(rest, zone);
    match rest {
        [] => match qtype {
            RecordType::SOA => Found::Records { answers: vec![soa(zone, s)], additionals: vec![] },
            _ => Found::NoData,
        },
        // RFC 2782: _<svc>._<tag|tcp>.service
        [svc, proto, kind] if kind == "service" && svc.starts_with('_') && proto.starts_with('_') => {
            let tag = (proto != "_tcp").then(|| &proto[1..]);
            service(&svc[1..], tag, qname, RecordType::SRV, zone, s, true)
        }
        [svc, kind] if kind == "service" => service(svc, None, qname, qtype, zone, s, false),
        [tag, svc, kind] if kind == "service" => service(svc, Some(tag), qname, qtype, zone, s, false),
        [node, kind] if kind == "node" => match zone.nodes.get(node.as_str()) {
            None => Found::NxDomain,
            Some(n) => {
                let mut answers: Vec<Record> =
                    n.ips.iter().filter(|ip| wants(ip, qtype)).map(|ip| addr_record(qname, s.ttl, *ip)).collect();
                if matches!(qtype, RecordType::TXT | RecordType::ANY) && !n.txt.is_empty() {
                    answers.push(Record::from_rdata(qname.clone(), s.ttl, RData::TXT(TXT::new(n.txt.clone()))));
                }
                if answers.is_empty() { Found::NoData } else { Found::Records { answers, additionals: vec![] } }
            }
        },
        [hex, kind] if kind == "addr" => match parse_hex_addr(hex) {
            None => Found::NxDomain,
            Some(ip) if wants(&ip, qtype) => {
                Found::Records { answers: vec![addr_record(qname, s.ttl, ip)], additionals: vec![] }
            }
            Some(_) => Found::NoData,
        },
        _ => Found::NxDomain,
    }
}

fn service(
    name: &str,
    tag: Option<&str>,
    qname: &Name,
    qtype: RecordType,
    zone: &Zone,
    s: &DnsSettings,
    srv_only: bool,
) -> Found {
    let Some(all) = zone.services.get(name) else { return Found::NxDomain };
    let mut targets: Vec<&Target> =
        all.iter().filter(|t| tag.is_none_or(|tag| t.tags.iter().any(|x| x == tag))).collect();
    if targets.is_empty() {
        return Found::NxDomain; // no healthy instance (with that tag)
    }
    fastrand::shuffle(&mut targets);
    if s.a_record_limit > 0 {
        targets.truncate(s.a_record_limit);
    }
    let (mut answers, mut additionals) = (Vec::new(), Vec::new());
    if qtype == RecordType::SRV || srv_only {
        if qtype != RecordType::SRV && qtype != RecordType::ANY {
            return Found::NoData;
        }
        for t in targets.iter().filter(|t| t.port.is_some()) {
            let srv = SRV::new(1, 1, t.port.unwrap_or_default(), t.srv_target.clone());
            answers.push(Record::from_rdata(qname.clone(), s.ttl, RData::SRV(srv)));
            additionals.push(addr_record(&t.srv_target, s.ttl, t.ip));
        }
    } else {
        answers = targets.iter().filter(|t| wants(&t.ip, qtype)).map(|t| addr_record(qname, s.ttl, t.ip)).collect();
    }
    if answers.is_empty() { Found::NoData } else { Found::Records { answers, additionals } }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
