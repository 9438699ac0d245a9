//! Answers one DNS request from a node's [`Zone`], bytes in and bytes out, with the hub's
//! semantics (`rabble_core::dns::answer`, which a test compares this with query by
//! query): A/AAAA in shuffled order, tag filters, RFC 2782 and plain SRV with the
//! targets' addresses as additionals, `<node>.node.<domain>` with TXT from its meta,
//! `<hex>.addr.<domain>`, `.<dc>.` labels, NXDOMAIN vs NODATA with the SOA, UDP answers
//! cut to the client's buffer (TC). Small by design — written for the agent's size
//! budget, without a DNS library: names outside the domain are REFUSED (Unbound in front
//! recurses), a malformed request gets FORMERR, a response is never answered.

use super::{Target, Zone, ZoneMeta};
use std::net::IpAddr;

const T_A: u16 = 1;
const T_SOA: u16 = 6;
const T_TXT: u16 = 16;
const T_AAAA: u16 = 28;
const T_SRV: u16 = 33;
const T_OPT: u16 = 41;
const T_ANY: u16 = 255;

const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;

/// How the request came: UDP answers are cut to the client's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Where a record's owner name is: the question's (a pointer to it) or spelled out.
#[derive(Debug, Clone)]
enum Owner {
    Question,
    Labels(Vec<String>),
}

#[derive(Debug, Clone)]
enum Data {
    Addr(IpAddr),
    Srv(u16, Vec<String>),
    Txt(Vec<String>),
    Soa { serial: u32, negative_ttl: u32 },
}

#[derive(Debug, Clone)]
struct Rec {
    owner: Owner,
    ttl: u32,
    data: Data,
}

enum Found {
    Records(Vec<Rec>, Vec<Rec>),
    NoData,
    NxDomain,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Skips a name that may be compressed; the offset after it.
fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let l = *b.get(i)?;
        match l {
            0 => return Some(i + 1),
            l if l & 0xC0 == 0xC0 => return b.get(i + 1).map(|_| i + 2),
            l if l > 63 => return None,
            l => i += 1 + usize::from(l),
        }
    }
    None
}

/// Skips one resource record; its type, class and the offset after it.
fn skip_record(b: &[u8], i: usize) -> Option<(u16, u16, usize)> {
    let i = skip_name(b, i)?;
    let (rtype, class, len) = (u16_at(b, i)?, u16_at(b, i + 2)?, usize::from(u16_at(b, i + 8)?));
    let end = i + 10 + len;
    (end <= b.len()).then_some((rtype, class, end))
}

/// The question: its labels (lowercased), type, and where it ends.
fn question(b: &[u8]) -> Option<(Vec<String>, u16, usize)> {
    let (mut i, mut labels, mut total) = (12, Vec::new(), 0);
    loop {
        let l = usize::from(*b.get(i)?);
        if l == 0 {
            i += 1;
            break;
        }
        total += l + 1;
        if l > 63 || total > 255 {
            return None; // a pointer or an extended label in a question: not from a resolver
        }
        labels.push(String::from_utf8_lossy(b.get(i + 1..i + 1 + l)?).to_ascii_lowercase());
        i += 1 + l;
    }
    let qtype = u16_at(b, i)?;
    u16_at(b, i + 2)?;
    Some((labels, qtype, i + 4))
}

/// The answer to `req`, or `None` when none is due (a response, or too short for an id).
/// `seed` shuffles the addresses.
pub fn answer(req: &[u8], zone: &Zone, transport: Transport, seed: u64) -> Option<Vec<u8>> {
    if req.len() < 12 || req[2] & 0x80 != 0 {
        return None;
    }
    let bare = |code| Some(header(req, code, false, false, [0, 0, 0, 0]));
    if (req[2] >> 3) & 0x0F != 0 {
        return bare(NOTIMP);
    }
    if u16_at(req, 4) != Some(1) {
        return bare(FORMERR);
    }
    let Some((labels, qtype, qend)) = question(req) else { return bare(FORMERR) };
    // The rest must parse too (as the hub's parser insists); an OPT record gives the buffer.
    let mut i = qend;
    let mut edns = None;
    let others = [6, 8, 10].iter().map(|&at| usize::from(u16_at(req, at).unwrap_or(0))).sum::<usize>();
    for n in 0..others {
        let Some((rtype, class, next)) = skip_record(req, i) else { return bare(FORMERR) };
        let additional = n >= others - usize::from(u16_at(req, 10).unwrap_or(0));
        if additional && rtype == T_OPT {
            edns = Some(class.max(512));
        }
        i = next;
    }
    let limit = match transport {
        Transport::Udp => usize::from(edns.unwrap_or(512)),
        Transport::Tcp => usize::from(u16::MAX),
    };
    let q = &req[12..qend];
    let Some(meta) = zone.meta.as_ref() else {
        return Some(reply(req, q, REFUSED, Vec::new(), Vec::new(), Vec::new(), edns, limit));
    };
    let dl = meta.domain.len();
    if labels.len() < dl || labels[labels.len() - dl..] != meta.domain[..] {
        return Some(reply(req, q, REFUSED, Vec::new(), Vec::new(), Vec::new(), edns, limit));
    }
    let soa = || Rec {
        owner: Owner::Labels(meta.domain.clone()),
        ttl: meta.negative_ttl,
        data: Data::Soa { serial: zone.index() as u32, negative_ttl: meta.negative_ttl },
    };
    let found = match &labels[..labels.len() - dl] {
        [] if qtype == T_SOA => Found::Records(vec![soa()], Vec::new()),
        rest => resolve(rest, qtype, zone, meta, seed),
    };
    let (code, answers, additionals, authority) = match found {
        Found::Records(a, b) => (NOERROR, a, b, Vec::new()),
        Found::NoData => (NOERROR, Vec::new(), Vec::new(), vec![soa()]),
        Found::NxDomain => (NXDOMAIN, Vec::new(), Vec::new(), vec![soa()]),
    };
    Some(reply(req, q, code, answers, additionals, authority, edns, limit))
}

fn wants(ip: &IpAddr, qtype: u16) -> bool {
    matches!((ip, qtype), (IpAddr::V4(_), T_A | T_ANY) | (IpAddr::V6(_), T_AAAA | T_ANY))
}

fn resolve(rest: &[String], qtype: u16, zone: &Zone, meta: &ZoneMeta, seed: u64) -> Found {
    let rest = match rest {
        [head @ .., kind, dc] if (kind == "service" || kind == "node") && meta.datacenters.contains(dc) => {
            &rest[..head.len() + 1]
        }
        _ => rest,
    };
    let addr = |ip: IpAddr| Rec { owner: Owner::Question, ttl: meta.ttl, data: Data::Addr(ip) };
    match rest {
        [] => Found::NoData, // the apex (its SOA is answered in `answer`)
        [svc, proto, kind] if kind == "service" && svc.starts_with('_') && proto.starts_with('_') => {
            let tag = (proto != "_tcp").then(|| &proto[1..]);
            service(&svc[1..], tag, T_SRV, zone, meta, true, seed)
        }
        [svc, kind] if kind == "service" => service(svc, None, qtype, zone, meta, false, seed),
        [tag, svc, kind] if kind == "service" => service(svc, Some(tag), qtype, zone, meta, false, seed),
        [node, kind] if kind == "node" => match zone.nodes.get(node.as_str()) {
            None => Found::NxDomain,
            Some(n) => {
                let mut answers: Vec<Rec> = n.ips.iter().filter(|ip| wants(ip, qtype)).map(|ip| addr(*ip)).collect();
                if matches!(qtype, T_TXT | T_ANY) && !n.txt.is_empty() {
                    answers.push(Rec { owner: Owner::Question, ttl: meta.ttl, data: Data::Txt(n.txt.clone()) });
                }
                if answers.is_empty() { Found::NoData } else { Found::Records(answers, Vec::new()) }
            }
        },
        [hex, kind] if kind == "addr" => match parse_hex_addr(hex) {
            None => Found::NxDomain,
            Some(ip) if wants(&ip, qtype) => Found::Records(vec![addr(ip)], Vec::new()),
            Some(_) => Found::NoData,
        },
        _ => Found::NxDomain,
    }
}

fn service(
    name: &str,
    tag: Option<&str>,
    qtype: u16,
    zone: &Zone,
    meta: &ZoneMeta,
    srv_only: bool,
    seed: u64,
) -> Found {
    let Some(all) = zone.services.get(name) else { return Found::NxDomain };
    let mut targets: Vec<&Target> =
        all.targets.iter().filter(|t| tag.is_none_or(|tag| t.tags.iter().any(|x| x == tag))).collect();
    if targets.is_empty() {
        return Found::NxDomain;
    }
    shuffle(&mut targets, seed);
    if meta.a_record_limit > 0 {
        targets.truncate(meta.a_record_limit);
    }
    let (mut answers, mut additionals) = (Vec::new(), Vec::new());
    let rec = |owner, data| Rec { owner, ttl: meta.ttl, data };
    if qtype == T_SRV || srv_only {
        if qtype != T_SRV && qtype != T_ANY {
            return Found::NoData;
        }
        for t in targets.iter() {
            let Some(port) = t.port else { continue };
            let mut target = match &t.node {
                Some(node) => vec![node.clone(), "node".to_owned()],
                None => vec![hex_addr(t.ip), "addr".to_owned()],
            };
            target.extend(meta.domain.iter().cloned());
            answers.push(rec(Owner::Question, Data::Srv(port, target.clone())));
            additionals.push(rec(Owner::Labels(target), Data::Addr(t.ip)));
        }
    } else {
        answers =
            targets.iter().filter(|t| wants(&t.ip, qtype)).map(|t| rec(Owner::Question, Data::Addr(t.ip))).collect();
    }
    if answers.is_empty() { Found::NoData } else { Found::Records(answers, additionals) }
}

/// Fisher–Yates with xorshift64*: the order of equal answers is not the catalog's.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// `c0a80001` for 192.168.0.1; 32 hex digits for IPv6 (Consul's `.addr.` form).
pub fn hex_addr(ip: IpAddr) -> String {
    let octets = match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    octets.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`hex_addr`].
pub fn parse_hex_addr(s: &str) -> Option<IpAddr> {
    if !s.is_ascii() || (s.len() != 8 && s.len() != 32) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect();
    let b = bytes?;
    Some(match b.len() {
        4 => IpAddr::from([b[0], b[1], b[2], b[3]]),
        _ => IpAddr::from(<[u8; 16]>::try_from(b.as_slice()).ok()?),
    })
}

/// A reply header: the request's id and RD; `counts` are QD, AN, NS, AR.
fn header(req: &[u8], code: u8, aa: bool, tc: bool, counts: [u16; 4]) -> Vec<u8> {
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(&req[..2]);
    h.push(0x80 | if aa { 0x04 } else { 0 } | if tc { 0x02 } else { 0 } | (req[2] & 0x01));
    h.push(code);
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

fn put_name(out: &mut Vec<u8>, owner: &Owner) {
    match owner {
        Owner::Question => out.extend_from_slice(&[0xC0, 0x0C]),
        Owner::Labels(labels) => {
            for l in labels {
                out.push(l.len() as u8);
                out.extend_from_slice(l.as_bytes());
            }
            out.push(0);
        }
    }
}

fn put_record(out: &mut Vec<u8>, r: &Rec) {
    put_name(out, &r.owner);
    let rtype = match &r.data {
        Data::Addr(IpAddr::V4(_)) => T_A,
        Data::Addr(IpAddr::V6(_)) => T_AAAA,
        Data::Srv(..) => T_SRV,
        Data::Txt(_) => T_TXT,
        Data::Soa { .. } => T_SOA,
    };
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    match &r.data {
        Data::Addr(IpAddr::V4(v)) => out.extend_from_slice(&v.octets()),
        Data::Addr(IpAddr::V6(v)) => out.extend_from_slice(&v.octets()),
        Data::Srv(port, target) => {
            out.extend_from_slice(&[0, 1, 0, 1]); // priority 1, weight 1
            out.extend_from_slice(&port.to_be_bytes());
            put_name(out, &Owner::Labels(target.clone()));
        }
        Data::Txt(strings) => {
            for s in strings {
                let s = &s.as_bytes()[..s.len().min(255)];
                out.push(s.len() as u8);
                out.extend_from_slice(s);
            }
        }
        Data::Soa { serial, negative_ttl } => {
            let Owner::Labels(apex) = &r.owner else { return };
            for first in ["ns", "hostmaster"] {
                let name: Vec<String> = std::iter::once(first.to_owned()).chain(apex.iter().cloned()).collect();
                put_name(out, &Owner::Labels(name));
            }
            for v in [*serial, 3600, 600, 86400, *negative_ttl] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let len = (out.len() - at - 2) as u16;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

#[allow(clippy::too_many_arguments)]
fn encode(req: &[u8], q: &[u8], code: u8, tc: bool, an: &[Rec], ns: &[Rec], ar: &[Rec], edns: bool) -> Vec<u8> {
    let counts = [1, an.len() as u16, ns.len() as u16, (ar.len() + usize::from(edns)) as u16];
    let mut out = header(req, code, code != REFUSED, tc, counts);
    out.extend_from_slice(q);
    for r in an.iter().chain(ns).chain(ar) {
        put_record(&mut out, r);
    }
    if edns {
        out.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]); // OPT: 4096-byte buffer
    }
    out
}

/// Encodes the reply within `limit` bytes: drops the additionals first, then as many
/// answers as needed, with TC set when any answer had to go.
#[allow(clippy::too_many_arguments)]
fn reply(
    req: &[u8],
    q: &[u8],
    code: u8,
    answers: Vec<Rec>,
    additionals: Vec<Rec>,
    authority: Vec<Rec>,
    edns: Option<u16>,
    limit: usize,
) -> Vec<u8> {
    let e = edns.is_some();
    let full = encode(req, q, code, false, &answers, &authority, &additionals, e);
    if full.len() <= limit {
        return full;
    }
    let bare = encode(req, q, code, false, &answers, &authority, &[], e);
    if bare.len() <= limit {
        return bare;
    }
    let (mut lo, mut hi) = (0usize, answers.len());
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if encode(req, q, code, true, &answers[..mid], &authority, &[], e).len() <= limit {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    encode(req, q, code, true, &answers[..lo], &authority, &[], e)
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
