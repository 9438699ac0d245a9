//! The pure core of ACME: which certificates the lanes' tables want (one per router
//! with `tls.certresolver`: its `tls.domains`, else the `Host`s of its rule, as Traefik
//! does), when one is due for renewal, and a certificate's validity read from its DER.

use rabble_shared::routes::LaneTable;
use rabble_shared::routes::rule::Rule;
use std::collections::{BTreeMap, BTreeSet};

/// One certificate: a resolver and its names (sorted, lower case, the first the subject).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CertKey {
    pub resolver: String,
    pub domains: Vec<String>,
}

/// What the tables want: each certificate and the lanes that serve it.
pub type Wanted = BTreeMap<CertKey, BTreeSet<String>>;

/// A name a public CA would issue for (a wildcard only as the first label).
pub fn issuable(name: &str) -> bool {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let labels: Vec<&str> = base.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

/// Every certificate the lanes' routers ask a resolver for. Names that cannot be
/// issued (an IP, a single label) are left out and named in `problems`.
pub fn wanted(tables: &[LaneTable], problems: &mut Vec<String>) -> Wanted {
    let mut out = Wanted::new();
    for t in tables {
        for (name, r) in &t.routers {
            let Some(tls) = &r.tls else { continue };
            let Some(resolver) = &tls.cert_resolver else { continue };
            let sets: Vec<Vec<String>> = if tls.domains.is_empty() {
                let hosts =
                    Rule::parse(&r.rule).map(|rule| rule.hosts().iter().map(|h| h.to_ascii_lowercase()).collect());
                vec![hosts.unwrap_or_default()]
            } else {
                tls.domains
                    .iter()
                    .map(|d| std::iter::once(d.main.clone()).chain(d.sans.iter().cloned()).collect())
                    .collect()
            };
            for names in sets {
                let mut domains: Vec<String> = Vec::new();
                for n in names {
                    let n = n.trim_end_matches('.').to_ascii_lowercase();
                    if !issuable(&n) {
                        problems.push(format!("lane {} router {name}: {n:?} cannot have a public certificate", t.lane));
                    } else if !domains.contains(&n) {
                        domains.push(n);
                    }
                }
                if domains.is_empty() {
                    problems.push(format!(
                        "lane {} router {name}: no domain to ask {resolver} for (no Host in the rule, no tls.domains)",
                        t.lane
                    ));
                    continue;
                }
                // The subject stays first; the rest sorted, so the same set is one key.
                domains[1..].sort();
                let key = CertKey { resolver: resolver.clone(), domains };
                out.entry(key).or_default().insert(t.lane.clone());
            }
        }
    }
    out
}

/// Renew when less than a third of the lifetime is left, and at the latest 30 days
/// before expiry (Let's Encrypt's 90-day certificates: at 30 days, as Traefik does).
pub fn renew_at(not_before: u64, not_after: u64) -> u64 {
    let life = not_after.saturating_sub(not_before);
    not_after.saturating_sub((life / 3).min(30 * 86_400))
}

/// `(not_before, not_after)` of a DER certificate, unix seconds.
pub fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let cert = Der::new(der).read(0x30)?; // Certificate
    let mut tbs = Der::new(cert).read_all(0x30)?; // TBSCertificate
    tbs.skip_if(0xa0); // [0] version
    tbs.read(0x02)?; // serial
    tbs.read(0x30)?; // signature algorithm
    tbs.read(0x30)?; // issuer
    let mut v = Der::new(tbs.read(0x30)?);
    Some((time(&mut v)?, time(&mut v)?))
}

struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn new(b: &'a [u8]) -> Der<'a> {
        Der(b)
    }
    /// The next element's tag and content.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |a, b| a << 8 | usize::from(*b)), &rest[n..])
        };
        let content = rest.get(..len)?;
        self.0 = &rest[len..];
        Some((tag, content))
    }
    fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|(t, _)| *t == tag).map(|(_, c)| c)
    }
    fn read_all(mut self, tag: u8) -> Option<Der<'a>> {
        self.read(tag).map(Der)
    }
    fn skip_if(&mut self, tag: u8) {
        if self.0.first() == Some(&tag) {
            self.next();
        }
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(d: &mut Der<'_>) -> Option<u64> {
    let (tag, c) = d.next()?;
    let s = std::str::from_utf8(c).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: u64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (0x18, 14) => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<u64>().ok();
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day)? * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = i64::try_from(y).ok()? - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(m).ok()?;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::try_from(d).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
