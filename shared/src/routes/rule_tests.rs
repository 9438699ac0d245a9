//! Rule parsing and matching, against the examples of Traefik's documentation.

use super::*;

struct Req {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    ip: Option<IpAddr>,
}

impl Request for Req {
    fn method(&self) -> &str {
        self.method
    }
    fn host(&self) -> &str {
        self.host
    }
    fn path(&self) -> &str {
        self.path
    }
    fn query(&self) -> Option<&str> {
        self.query
    }
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v).collect()
    }
    fn client_ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

fn req(host: &'static str, path: &'static str) -> Req {
    Req { method: "GET", host, path, query: None, headers: vec![], ip: Some("192.168.1.7".parse().unwrap()) }
}

fn m(rule: &str, r: &Req) -> bool {
    Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}")).matches(r)
}

#[test]
fn the_seeds_rules_and_traefiks_examples() {
    let filebot = req("FileBot.service.consul", "/");
    assert!(m("Host(`filebot.service.consul`)", &filebot));
    assert!(!m("Host(`registry.shiveringjimmy.com`)", &filebot));
    assert!(m("Host(\"filebot.service.consul\")", &filebot));
    let p = req("example.com", "/products/shoes/31");
    assert!(!m("Path(`/products`)", &p));
    assert!(m("PathPrefix(`/products`)", &p));
    assert!(m("PathRegexp(`^/products/(shoes|socks)/[0-9]+$`)", &p));
    assert!(m("HostRegexp(`^.+\\.example\\.com$`)", &req("a.example.com", "/")));
    assert!(!m("HostRegexp(`^.+\\.example\\.com$`)", &p));
    assert!(m("Host(`example.com`) && (PathPrefix(`/a`) || PathPrefix(`/products`)) && !Method(`POST`)", &p));
    assert!(!m("Host(`example.com`) && !PathPrefix(`/products`)", &p));
    // && binds tighter than ||.
    assert!(m("Host(`x`) && Path(`/nope`) || PathPrefix(`/`)", &p));
}

#[test]
fn headers_queries_methods_and_client_ips() {
    let mut r = req("h", "/search");
    r.query = Some("mobile=true&q=a%20b&flag");
    r.headers = vec![("Content-Type", "application/yaml"), ("X-A", "1")];
    r.method = "post";
    assert!(m("Query(`mobile`, `true`)", &r));
    assert!(m("Query(`q`, `a b`)", &r));
    assert!(m("Query(`flag`)", &r));
    assert!(!m("Query(`mobile`, `false`)", &r));
    assert!(m("QueryRegexp(`mobile`, `^(true|yes)$`)", &r));
    assert!(m("Header(`content-type`, `application/yaml`)", &r));
    assert!(m("HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)", &r));
    assert!(m("Method(`POST`)", &r));
    assert!(m("ClientIP(`192.168.1.0/24`)", &r));
    assert!(m("ClientIP(`192.168.1.7`)", &r));
    assert!(!m("ClientIP(`10.0.0.0/8`)", &r));
    assert!(!m("ClientIP(`fe80::/10`)", &r));
    r.ip = Some("fe80::1".parse().unwrap());
    assert!(m("ClientIP(`fe80::/10`)", &r));
    r.ip = Some("::ffff:192.168.1.9".parse().unwrap());
    assert!(m("ClientIP(`192.168.1.0/24`)", &r), "an IPv4-mapped client");
}

#[test]
fn mistakes_are_named_with_their_column() {
    for (rule, want) in [
        ("Host(`a`", "expected `,` or `)`"),
        ("Host('a')", "single quotes"),
        ("Hots(`a`)", "unknown matcher \"Hots\""),
        ("Host(`a`, `b`)", "Host takes 1 value(s), got 2"),
        ("Host(`a`) Path(`/`)", "a missing && or ||"),
        ("Path(`x`)", "starts with `/`"),
        ("HostRegexp(`(`)", "bad regexp"),
        ("ClientIP(`10.0.0.0/33`)", "not an IP or CIDR"),
        ("Host(`a) && Path(`/`)", "expected `,` or `)`"),
        ("", "expected a matcher"),
        ("(Host(`a`)", "expected `)`"),
        ("Host(`a`) &&", "expected a matcher"),
        ("Host(\"a\\q\")", "unsupported escape"),
    ] {
        let e = Rule::parse(rule).unwrap_err();
        assert!(e.to_string().contains(want), "{rule}: {e}");
        assert!(e.to_string().starts_with("at column "), "{e}");
    }
    assert_eq!(Rule::parse("Hots(`a`)").unwrap_err().at, 0);
    assert_eq!(Rule::parse("Host(`a`) && Pth(`/`)").unwrap_err().at, 13);
}

#[test]
fn absurd_rules_are_refused_not_recursed_into() {
    let deep = format!("{}Host(`a`){}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Rule::parse(&deep).unwrap_err().to_string().contains(&format!("{MAX_RULE}")));
    let deep = format!("{}Host(`a`){}", "(".repeat(100), ")".repeat(100));
    assert!(Rule::parse(&deep).unwrap_err().to_string().contains("nested more than"));
    let nots = format!("{}Host(`a`)", "!".repeat(100));
    assert!(Rule::parse(&nots).is_err());
    // Long flat chains are fine (no recursion per operand).
    let chain = vec!["Path(`/a`)"; 250].join(" || ");
    assert!(Rule::parse(&chain).is_ok());
}

#[test]
fn priority_is_the_rules_length_and_hosts_are_listed() {
    assert_eq!(default_priority("HostRegexp(`[a-z]+\\.traefik\\.com`)"), 34);
    assert_eq!(default_priority("Host(`foobar.traefik.com`)"), 26);
    let r = Rule::parse("Host(`a.lan`) || (Host(`B.lan`) && Path(`/`))").unwrap();
    assert_eq!(r.hosts(), vec!["a.lan", "b.lan"]);
}

/// A deterministic fuzz run on stable Rust (the cargo-fuzz target is
/// hub/fuzz/fuzz_targets/route_rule.rs): token soup and mutated real rules must never
/// panic, and whatever parses must be matchable.
#[test]
fn random_and_mutated_rules_never_panic() {
    const TOKENS: [&str; 22] = [
        "Host",
        "HostRegexp",
        "Path",
        "PathPrefix",
        "PathRegexp",
        "Method",
        "Header",
        "Query",
        "ClientIP",
        "(",
        ")",
        "`",
        "\"",
        ",",
        "&&",
        "||",
        "!",
        " ",
        "\\",
        "a.lan",
        "/x",
        "[a-z]+(",
    ];
    let seeds = [
        "Host(`a.lan`) && (PathPrefix(`/x`) || !Method(`POST`))",
        "HostRegexp(`^.+\\.lan$`) || Query(`a`, `b`) && ClientIP(`10.0.0.0/8`)",
        "Header(\"X-A\", \"b\\\"c\") && QueryRegexp(`q`, `^(y|n)$`)",
    ];
    let r = Req {
        method: "GET",
        host: "a.lan",
        path: "/x/y",
        query: Some("a=b&q=y"),
        headers: vec![("x-a", "b\"c")],
        ip: None,
    };
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..20_000 {
        let text: String = if round % 2 == 0 {
            (0..rng.usize(0..40)).map(|_| TOKENS[rng.usize(..TOKENS.len())]).collect()
        } else {
            let mut b = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.usize(1..5) {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            b.truncate(rng.usize(0..=b.len()));
            String::from_utf8_lossy(&b).into_owned()
        };
        if let Ok(rule) = Rule::parse(&text) {
            let _ = rule.matches(&r);
        }
    }
}
