//! Traefik v3 router rules, pure: [`Rule::parse`] reads `Host(\`a\`) && !PathPrefix(\`/x\`)`
//! into a tree, [`Rule::matches`] decides a request. Matchers: `Host`, `HostRegexp`,
//! `Path`, `PathPrefix`, `PathRegexp`, `Method`, `Header`, `HeaderRegexp`, `Query`,
//! `QueryRegexp`, `ClientIP`; `&&` binds tighter than `||`; `!` and parentheses.
//! Values are Go string literals: backquoted (raw) or double-quoted (with escapes).
//! Regexps use `regex-lite` (Go's RE2 syntax minus Unicode classes). Absurd input is
//! bounded: a rule is at most [`MAX_RULE`] bytes and [`MAX_DEPTH`] levels deep.

use std::fmt;
use std::net::IpAddr;

/// The longest rule accepted, in bytes.
pub const MAX_RULE: usize = 4096;
/// The deepest nesting of `!` and parentheses accepted.
pub const MAX_DEPTH: usize = 32;

/// Why a rule does not parse, with the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {}: {message}", .at + 1)]
pub struct RuleError {
    pub at: usize,
    pub message: String,
}

/// A compiled regexp that compares by its source.
#[derive(Clone)]
pub struct Pattern(regex_lite::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.0.as_str())
    }
}

/// An address or a network, for `ClientIP`.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub addr: IpAddr,
    pub bits: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Net { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        let (a, b, len): (u128, u128, u32) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n).into(), u32::from(i).into(), 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let bits = u32::from(self.bits);
        if bits == 0 {
            return true;
        }
        let shift = len - bits;
        (a >> shift) == (b >> shift)
    }
}

/// One matcher.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    Host(String),
    HostRegexp(Pattern),
    Path(String),
    PathPrefix(String),
    PathRegexp(Pattern),
    Method(String),
    Header(String, String),
    HeaderRegexp(String, Pattern),
    Query(String, Option<String>),
    QueryRegexp(String, Pattern),
    ClientIp(Net),
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Match(Matcher),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
}

/// What a rule looks at in a request.
pub trait Request {
    fn method(&self) -> &str;
    /// The host, without a port (any case).
    fn host(&self) -> &str;
    fn path(&self) -> &str;
    /// The raw query string (after `?`), if any.
    fn query(&self) -> Option<&str>;
    /// Every value of a header (name in any case).
    fn header(&self, name: &str) -> Vec<&str>;
    fn client_ip(&self) -> Option<IpAddr>;
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        if text.len() > MAX_RULE {
            return Err(RuleError {
                at: MAX_RULE,
                message: format!("a rule of {} bytes; at most {MAX_RULE}", text.len()),
            });
        }
        let mut p = Parser { s: text.as_bytes(), at: 0, depth: 0 };
        let rule = p.or()?;
        p.space();
        if p.at < p.s.len() {
            return Err(p.err("unexpected text after the rule (a missing && or ||?)"));
        }
        Ok(rule)
    }

    pub fn matches(&self, r: &dyn Request) -> bool {
        match self {
            Rule::Match(m) => m.matches(r),
            Rule::Not(x) => !x.matches(r),
            Rule::And(a, b) => a.matches(r) && b.matches(r),
            Rule::Or(a, b) => a.matches(r) || b.matches(r),
        }
    }

    /// Every `Host(...)` the rule names (for certificates and `rabble routes`).
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Rule::Match(Matcher::Host(h)) => vec![h.as_str()],
            Rule::Match(_) | Rule::Not(_) => vec![],
            Rule::And(a, b) | Rule::Or(a, b) => {
                let mut v = a.hosts();
                v.extend(b.hosts());
                v
            }
        }
    }
}

/// Traefik's default priority: the rule's length.
pub fn default_priority(rule: &str) -> i64 {
    rule.len() as i64
}

impl Matcher {
    fn matches(&self, r: &dyn Request) -> bool {
        match self {
            Matcher::Host(h) => r.host().trim_end_matches('.').eq_ignore_ascii_case(h),
            Matcher::HostRegexp(p) => p.0.is_match(&r.host().to_ascii_lowercase()),
            Matcher::Path(p) => r.path() == p,
            Matcher::PathPrefix(p) => r.path().starts_with(p.as_str()),
            Matcher::PathRegexp(p) => p.0.is_match(r.path()),
            Matcher::Method(m) => r.method().eq_ignore_ascii_case(m),
            Matcher::Header(k, v) => r.header(k).iter().any(|x| x == v),
            Matcher::HeaderRegexp(k, p) => r.header(k).iter().any(|x| p.0.is_match(x)),
            Matcher::Query(k, v) => query_values(r.query(), k).iter().any(|x| v.as_ref().is_none_or(|v| x == v)),
            Matcher::QueryRegexp(k, p) => query_values(r.query(), k).iter().any(|x| p.0.is_match(x)),
            Matcher::ClientIp(n) => r.client_ip().is_some_and(|ip| n.contains(ip)),
        }
    }
}

/// The decoded values of `key` in a query string.
fn query_values(q: Option<&str>, key: &str) -> Vec<String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
        .collect()
}

/// `%XX` and `+` decoded (a query string's values); invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> RuleError {
        RuleError { at: self.at, message: message.to_owned() }
    }

    fn space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.space();
        if self.s[self.at..].starts_with(tok.as_bytes()) {
            self.at += tok.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Rule::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Rule::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Rule, RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("nested more than {MAX_DEPTH} levels deep")));
        }
        let r = if self.eat("!") {
            Rule::Not(Box::new(self.unary()?))
        } else if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.err("expected `)`"));
            }
            inner
        } else {
            Rule::Match(self.call()?)
        };
        self.depth -= 1;
        Ok(r)
    }

    fn call(&mut self) -> Result<Matcher, RuleError> {
        self.space();
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at].is_ascii_alphabetic() {
            self.at += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        if name.is_empty() {
            return Err(self.err("expected a matcher such as Host(`example.com`)"));
        }
        if !self.eat("(") {
            return Err(self.err(&format!("expected `(` after {name}")));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.string()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.err("expected `,` or `)`"));
                }
            }
        }
        let at = start;
        let bad = |message: String| RuleError { at, message };
        let arity = |n: usize| -> Result<(), RuleError> {
            if args.len() == n { Ok(()) } else { Err(bad(format!("{name} takes {n} value(s), got {}", args.len()))) }
        };
        let re = |s: &str| -> Result<Pattern, RuleError> {
            regex_lite::Regex::new(s).map(Pattern).map_err(|e| bad(format!("{name}: bad regexp {s:?}: {e}")))
        };
        Ok(match name.as_str() {
            "Host" => {
                arity(1)?;
                Matcher::Host(args[0].to_ascii_lowercase())
            }
            "HostRegexp" => {
                arity(1)?;
                Matcher::HostRegexp(re(&args[0])?)
            }
            "Path" | "PathPrefix" => {
                arity(1)?;
                if !args[0].starts_with('/') {
                    return Err(bad(format!("{name}: a path starts with `/`, got {:?}", args[0])));
                }
                if name == "Path" { Matcher::Path(args[0].clone()) } else { Matcher::PathPrefix(args[0].clone()) }
            }
            "PathRegexp" => {
                arity(1)?;
                Matcher::PathRegexp(re(&args[0])?)
            }
            "Method" => {
                arity(1)?;
                Matcher::Method(args[0].to_ascii_uppercase())
            }
            "Header" => {
                arity(2)?;
                Matcher::Header(args[0].clone(), args[1].clone())
            }
            "HeaderRegexp" => {
                arity(2)?;
                Matcher::HeaderRegexp(args[0].clone(), re(&args[1])?)
            }
            "Query" => match args.len() {
                1 => Matcher::Query(args[0].clone(), None),
                _ => {
                    arity(2)?;
                    Matcher::Query(args[0].clone(), Some(args[1].clone()))
                }
            },
            "QueryRegexp" => {
                arity(2)?;
                Matcher::QueryRegexp(args[0].clone(), re(&args[1])?)
            }
            "ClientIP" => {
                arity(1)?;
                Matcher::ClientIp(
                    Net::parse(&args[0]).ok_or_else(|| bad(format!("ClientIP: {:?} is not an IP or CIDR", args[0])))?,
                )
            }
            other => {
                return Err(bad(format!(
                    "unknown matcher {other:?} (Host, HostRegexp, Path, PathPrefix, PathRegexp, Method, Header, \
                     HeaderRegexp, Query, QueryRegexp, ClientIP)"
                )));
            }
        })
    }

    /// A Go string literal: `raw` or "with \"escapes\"".
    fn string(&mut self) -> Result<String, RuleError> {
        self.space();
        let quote = match self.s.get(self.at) {
            Some(q @ (b'`' | b'"')) => *q,
            Some(b'\'') => return Err(self.err("single quotes are not accepted: use `backquotes` or \"double\"")),
            _ => return Err(self.err("expected a value in `backquotes` or \"double quotes\"")),
        };
        let open = self.at;
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            if c == quote {
                return String::from_utf8(out).map_err(|_| self.err("the value is not UTF-8"));
            }
            if c == b'\\' && quote == b'"' {
                let e = *self.s.get(self.at).ok_or_else(|| self.err("unterminated escape"))?;
                self.at += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'\\' => b'\\',
                    b'"' => b'"',
                    _ => return Err(self.err(&format!("unsupported escape \\{}", e as char))),
                });
            } else {
                out.push(c);
            }
        }
        Err(RuleError { at: open, message: "unterminated value".into() })
    }
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
