//! The fast path for the hottest queries: `<svc>.service.<domain>` A or AAAA, one
//! plain question, optional EDNS. Answers are pre-encoded at commit time (each record
//! points at the question name with `0xC00C`, so the name comes back as asked); a query
//! only parses a header, copies its question and shuffles records. Anything else, and
//! anything that would not fit, returns `None` and takes the general path in `answer`.

use super::zone::Zone;

use super::zone::{TYPE_A, TYPE_AAAA};
const TYPE_OPT: u16 = 41;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Answers a hot query, or `None` to take the general path.
pub fn answer(req: &[u8], zone: &Zone, domain: &[String], udp: bool, recursion: bool, limit: usize) -> Option<Vec<u8>> {
    // Header: a query (QR=0, opcode 0), one question, no answers or authority, at most
    // one additional (EDNS).
    if req.len() < 17 || req[2] & 0xF8 != 0 {
        return None;
    }
    if u16_at(req, 4)? != 1 || u16_at(req, 6)? != 0 || u16_at(req, 8)? != 0 {
        return None;
    }
    let arcount = u16_at(req, 10)?;
    // The name: plain labels, lowercased into `name`; no compression in a question.
    let mut i = 12;
    let mut labels: [(usize, usize); 8] = [(0, 0); 8];
    let mut n = 0;
    let mut name = [0u8; 255];
    let mut len = 0;
    loop {
        let l = usize::from(*req.get(i)?);
        if l == 0 {
            i += 1;
            break;
        }
        if l > 63 || n == labels.len() || len + l > name.len() {
            return None;
        }
        let label = req.get(i + 1..i + 1 + l)?;
        for (k, c) in label.iter().enumerate() {
            name[len + k] = c.to_ascii_lowercase();
        }
        labels[n] = (len, len + l);
        n += 1;
        len += l;
        i += 1 + l;
    }
    let qtype = u16_at(req, i)?;
    if u16_at(req, i + 2)? != 1 || (qtype != TYPE_A && qtype != TYPE_AAAA) {
        return None;
    }
    let q_end = i + 4;
    // EDNS: exactly one OPT record with the root name and version 0, ending the packet.
    let (edns, max_udp) = match arcount {
        0 if req.len() == q_end => (false, 512usize),
        1 => {
            let o = q_end;
            if *req.get(o)? != 0 || u16_at(req, o + 1)? != TYPE_OPT || *req.get(o + 6)? != 0 {
                return None;
            }
            let rdlen = usize::from(u16_at(req, o + 9)?);
            if req.len() != o + 11 + rdlen {
                return None;
            }
            (true, usize::from(u16_at(req, o + 3)?).max(512))
        }
        _ => return None,
    };
    // `<svc>.service.<domain...>`, nothing else.
    let dl = domain.len();
    if n != dl + 2 {
        return None;
    }
    let label = |k: usize| &name[labels[k].0..labels[k].1];
    if label(1) != b"service" || (0..dl).any(|k| label(2 + k) != domain[k].as_bytes()) {
        return None;
    }
    let svc = std::str::from_utf8(label(0)).ok()?;
    let hot = if qtype == TYPE_A { zone.hot_a.get(svc)? } else { zone.hot_aaaa.get(svc)? };
    if hot.is_empty() {
        return None; // NODATA, with its SOA, is the general path's job
    }
    let mut order: Vec<usize> = (0..hot.len()).collect();
    fastrand::shuffle(&mut order);
    if limit > 0 {
        order.truncate(limit);
    }
    let answers_len: usize = order.iter().map(|&k| hot[k].len()).sum();
    let total = q_end + answers_len + if edns { 11 } else { 0 };
    if udp && total > max_udp {
        return None; // truncation is the general path's job
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&req[..2]);
    out.push(0x84 | (req[2] & 0x01)); // QR, AA, RD as asked
    out.push(if recursion { 0x80 } else { 0 });
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(order.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&u16::from(edns).to_be_bytes());
    out.extend_from_slice(&req[12..q_end]);
    for &k in &order {
        out.extend_from_slice(&hot[k]);
    }
    if edns {
        out.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    }
    Some(out)
}
