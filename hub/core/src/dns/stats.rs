//! DNS counters for `/metrics`: queries by type and by response code, and how long an
//! answer took (a histogram). Lock-free atomics on the request path; the query type is
//! read from the request's first question without allocating.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Query types counted by name; everything else is `other`.
const TYPES: [(u16, &str); 8] =
    [(1, "A"), (28, "AAAA"), (33, "SRV"), (12, "PTR"), (16, "TXT"), (255, "ANY"), (6, "SOA"), (2, "NS")];
const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
/// Histogram bucket bounds, seconds.
pub const BUCKETS: [f64; 11] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];

#[derive(Debug, Default)]
pub struct DnsStats {
    by_type: [AtomicU64; TYPES.len() + 1],
    by_rcode: [AtomicU64; RCODES.len() + 2],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// The first question's type, if the request has one.
fn qtype(req: &[u8]) -> Option<u16> {
    let mut at = 12;
    for _ in 0..128 {
        let len = usize::from(*req.get(at)?);
        if len == 0 {
            return Some(u16::from_be_bytes([*req.get(at + 1)?, *req.get(at + 2)?]));
        }
        if len & 0xc0 != 0 {
            return None; // a pointer in a question: not worth following
        }
        at += len + 1;
    }
    None
}

impl DnsStats {
    /// One request, its reply (`None`: dropped), and how long the answer took.
    pub fn record(&self, req: &[u8], reply: Option<&[u8]>, took: Duration) {
        let t = qtype(req).and_then(|q| TYPES.iter().position(|(n, _)| *n == q)).unwrap_or(TYPES.len());
        self.by_type[t].fetch_add(1, Relaxed);
        let r = match reply.and_then(|r| r.get(3)) {
            Some(b) => usize::from(b & 0x0f).min(RCODES.len()),
            None => RCODES.len() + 1,
        };
        self.by_rcode[r].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP rabble_dns_queries_total DNS queries answered, by query type.");
        let _ = writeln!(out, "# TYPE rabble_dns_queries_total counter");
        for (i, (_, name)) in TYPES.iter().enumerate() {
            let _ = writeln!(out, "rabble_dns_queries_total{{type=\"{name}\"}} {}", self.by_type[i].load(Relaxed));
        }
        let _ = writeln!(out, "rabble_dns_queries_total{{type=\"other\"}} {}", self.by_type[TYPES.len()].load(Relaxed));
        let _ =
            writeln!(out, "# HELP rabble_dns_responses_total DNS responses, by response code (dropped: none sent).");
        let _ = writeln!(out, "# TYPE rabble_dns_responses_total counter");
        for (i, name) in RCODES.iter().chain(&["other", "dropped"]).enumerate() {
            let _ = writeln!(out, "rabble_dns_responses_total{{rcode=\"{name}\"}} {}", self.by_rcode[i].load(Relaxed));
        }
        let _ = writeln!(out, "# HELP rabble_dns_answer_seconds Time to answer a DNS query (relayed ones included).");
        let _ = writeln!(out, "# TYPE rabble_dns_answer_seconds histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "rabble_dns_answer_seconds_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "rabble_dns_answer_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "rabble_dns_answer_seconds_sum {}", self.sum_ns.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "rabble_dns_answer_seconds_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_type_rcode_and_time() {
        let s = DnsStats::default();
        // id, flags, 1 question: web.service.rabble. SRV IN
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["web", "service", "rabble"] {
            q.push(l.len() as u8);
            q.extend(l.as_bytes());
        }
        q.extend([0, 0, 33, 0, 1]);
        let mut reply = q.clone();
        reply[3] = 0x83; // NXDOMAIN
        s.record(&q, Some(&reply), Duration::from_micros(30));
        s.record(b"\x00\x01", None, Duration::from_millis(2));
        let mut out = String::new();
        s.render(&mut out);
        assert!(out.contains("rabble_dns_queries_total{type=\"SRV\"} 1"), "{out}");
        assert!(out.contains("rabble_dns_queries_total{type=\"other\"} 1"), "{out}");
        assert!(out.contains("rabble_dns_responses_total{rcode=\"NXDOMAIN\"} 1"), "{out}");
        assert!(out.contains("rabble_dns_responses_total{rcode=\"dropped\"} 1"), "{out}");
        assert!(out.contains("rabble_dns_answer_seconds_bucket{le=\"0.00005\"} 1"), "{out}");
        assert!(out.contains("rabble_dns_answer_seconds_bucket{le=\"0.0025\"} 2"), "{out}");
        assert!(out.contains("rabble_dns_answer_seconds_count 2"), "{out}");
    }
}
