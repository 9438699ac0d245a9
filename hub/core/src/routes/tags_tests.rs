//! Tags → a lane's routers, services and middlewares, on the seed's own tags.

use super::*;

fn inst<'a>(service: &'a str, tags: &'a [String], port: Option<u16>) -> Instance<'a> {
    Instance { service, id: format!("pi1/{service}"), tags, address: "10.0.0.5", port }
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_seeds_docker_registry_in_both_lanes() {
    let t = tags(&[
        "routing.enable=true",
        "routing.http.routers.docker-registry.rule=Host(`docker-registry.service.consul`)",
        "ingress.enable=true",
        "ingress.http.routers.docker-registry.entrypoints=websecure",
        "ingress.http.routers.docker-registry.tls=true",
        "ingress.http.routers.docker-registry.tls.certresolver=cloudflare",
        "ingress.http.routers.docker-registry.rule=Host(`registry.shiveringjimmy.com`)",
    ]);
    let i = inst("docker-registry", &t, Some(25000));
    let routing = contribution(&i, "routing", "rabble");
    assert!(routing.problems.is_empty(), "{:?}", routing.problems);
    let r = &routing.routers["docker-registry"];
    assert_eq!(r.rule, "Host(`docker-registry.service.consul`)");
    assert_eq!((r.service.as_str(), r.priority, r.tls.is_none()), ("docker-registry", 38, true));
    assert_eq!(routing.services["docker-registry"].servers[0].url, "http://10.0.0.5:25000");
    let ingress = contribution(&i, "ingress", "rabble");
    let r = &ingress.routers["docker-registry"];
    assert_eq!(r.entry_points, vec!["websecure"]);
    assert_eq!(r.tls.as_ref().unwrap().cert_resolver.as_deref(), Some("cloudflare"));
    assert_eq!(r.rule, "Host(`registry.shiveringjimmy.com`)");
}

#[test]
fn enable_without_a_rule_gets_the_dns_name_and_no_enable_means_not_in_the_lane() {
    let t = tags(&["routing.enable=true"]);
    let c = contribution(&inst("FileBot", &t, Some(5452)), "routing", "rabble");
    assert_eq!(c.routers["FileBot"].rule, "Host(`filebot.service.rabble`)");
    assert_eq!(c.routers["FileBot"].service, "FileBot");
    let t = tags(&["routing.http.routers.x.rule=Host(`x`)"]);
    assert_eq!(contribution(&inst("x", &t, Some(1)), "routing", "rabble"), Contribution::default());
    // Another lane's tags are not read.
    let t = tags(&["traefik.enable=true"]);
    assert!(contribution(&inst("x", &t, Some(1)), "routing", "rabble").routers.is_empty());
}

#[test]
fn services_ports_schemes_and_middlewares() {
    let t = tags(&[
        "routing.enable=true",
        "routing.http.routers.ha.rule=Host(`ha.lan`)",
        "routing.http.routers.ha.middlewares=secure-headers@file, lan-only",
        "routing.http.routers.ha.priority=100",
        "routing.http.services.ha.loadbalancer.server.port=8123",
        "routing.http.services.ha.loadbalancer.server.scheme=https",
        "routing.http.services.ha.loadbalancer.passhostheader=false",
        "routing.http.middlewares.secure-headers.headers.customResponseHeaders.X-Frame-Options=DENY",
        "routing.http.middlewares.secure-headers.headers.customrequestheaders.X-Forwarded-Proto=https",
        "routing.http.middlewares.lan-only.ipallowlist.sourcerange=192.168.0.0/16, 10.0.0.0/8",
        "routing.http.middlewares.slow.ratelimit.average=10",
        "routing.http.middlewares.slow.ratelimit.burst=20",
        "routing.http.middlewares.auth.basicauth.users=me:$apr1$x$y",
        "routing.http.middlewares.auth.forwardauth.address=http://auth:4181",
        "routing.http.middlewares.to-https.redirectscheme.scheme=https",
        "routing.http.middlewares.to-https.redirectscheme.permanent=true",
        "routing.http.middlewares.both.chain.middlewares=lan-only,slow",
        "routing.http.middlewares.gz.compress=true",
        "routing.http.middlewares.strip.stripprefix.prefixes=/a,/b",
        "routing.http.middlewares.add.addprefix.prefix=/api",
    ]);
    let c = contribution(&inst("homeassistant", &t, Some(1)), "routing", "rabble");
    let r = &c.routers["ha"];
    assert_eq!(r.middlewares, vec!["secure-headers", "lan-only"]);
    assert_eq!((r.priority, r.service.as_str()), (100, "ha"));
    let s = &c.services["ha"];
    assert_eq!((s.servers[0].url.as_str(), s.pass_host_header), ("https://10.0.0.5:8123", false));
    let Middleware::Headers(h) = &c.middlewares["secure-headers"] else { panic!() };
    assert_eq!(h.custom_response_headers["X-Frame-Options"], "DENY");
    assert_eq!(h.custom_request_headers["X-Forwarded-Proto"], "https");
    let Middleware::IpAllowList(a) = &c.middlewares["lan-only"] else { panic!() };
    assert_eq!(a.source_range, vec!["192.168.0.0/16", "10.0.0.0/8"]);
    assert_eq!(c.middlewares["slow"], Middleware::RateLimit(RateLimit { average: 10, burst: 20 }));
    // `auth` got two types: the second is refused, the first kept.
    assert!(matches!(c.middlewares["auth"], Middleware::BasicAuth(_)));
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].reason.contains("another type"), "{:?}", c.problems);
    assert!(matches!(c.middlewares["both"], Middleware::Chain(_)));
    assert!(matches!(c.middlewares["gz"], Middleware::Compress(_)));
    let json = serde_json::to_string(&c.middlewares["to-https"]).unwrap();
    assert_eq!(json, r#"{"redirectScheme":{"scheme":"https","permanent":true}}"#);
}

#[test]
fn a_bad_tag_is_reported_with_its_reason_and_the_rest_still_works() {
    let t = tags(&[
        "routing.enable=true",
        "routing.http.routers.good.rule=Host(`good.lan`)",
        "routing.http.routers.bad.rule=Host(`bad.lan`",
        "routing.http.routers.good.priority=high",
        "routing.http.services.web.loadbalancer.server.port=80",
        "routing.http.services.web.loadbalancer.sticky.cookie=true",
        "routing.http.middlewares.m.plugin.x=1",
        "routing.http.middlewares.half.redirectscheme.permanent=true",
        "routing.tcp.routers.db.rule=HostSNI(`*`)",
        "routing.enable=maybe",
    ]);
    let c = contribution(&inst("web", &t, Some(8080)), "routing", "rabble");
    assert_eq!(c.routers.keys().collect::<Vec<_>>(), vec!["good"]);
    assert_eq!(c.routers["good"].priority, 16, "default priority when the given one is not a number");
    let reasons: Vec<String> = c.problems.iter().map(|p| format!("{} => {}", p.tag, p.reason)).collect();
    let all = reasons.join("\n");
    for want in [
        "routers.good.priority=high => \"high\" is not a number",
        "routers.bad.rule=Host(`bad.lan` => at column",
        "sticky.cookie\" is not supported",
        "middleware type \"plugin\" is not supported",
        "middleware \"half\" needs redirectscheme.scheme",
        "TCP and UDP routing are not supported",
        "enable=maybe => \"maybe\" is not true or false",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    assert!(c.problems.iter().all(|p| p.instance == "pi1/web" && p.service == "web"));
}

#[test]
fn no_port_and_several_services_are_explained() {
    let t = tags(&["routing.enable=true"]);
    let c = contribution(&inst("portless", &t, None), "routing", "rabble");
    assert!(c.services.is_empty() && c.problems[0].reason.contains("no port"), "{:?}", c.problems);
    let t = tags(&[
        "routing.enable=true",
        "routing.http.services.a.loadbalancer.server.port=1",
        "routing.http.services.b.loadbalancer.server.port=2",
    ]);
    let c = contribution(&inst("two", &t, None), "routing", "rabble");
    assert!(c.routers.is_empty() && c.problems[0].reason.contains("name one"), "{:?}", c.problems);
    assert_eq!(normalize("My Service_1"), "My-Service-1");
}

/// Random and mutated tags never panic (the cargo-fuzz target is hub/fuzz's route_rule).
#[test]
fn random_tags_never_panic() {
    const PARTS: [&str; 14] = [
        "routing.",
        "http.",
        "routers.",
        "services.",
        "middlewares.",
        "r.",
        "rule=",
        "loadbalancer.server.port=",
        "headers.customrequestheaders.",
        "chain.middlewares=",
        "Host(`a`)",
        "=",
        ".",
        "ratelimit.average=9",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..5_000 {
        let t: Vec<String> = (0..rng.usize(0..8))
            .map(|_| (0..rng.usize(1..6)).map(|_| PARTS[rng.usize(..PARTS.len())]).collect())
            .chain(["routing.enable=true".to_owned()])
            .collect();
        let c = contribution(&inst("x", &t, Some(1)), "routing", "rabble");
        let _ = crate::routes::table::merge(&crate::routes::table::Lane::defaults()[0], 1, vec![c]);
    }
}

#[test]
fn tls_domains_main_and_sans() {
    let t = tags(&[
        "ingress.enable=true",
        "ingress.http.routers.web.tls.certresolver=le",
        "ingress.http.routers.web.tls.domains[0].main=Example.org",
        "ingress.http.routers.web.tls.domains[0].sans=*.example.org, www.example.net",
        "ingress.http.routers.web.tls.domains[1].main=other.org",
    ]);
    let c = contribution(&inst("web", &t, Some(80)), "ingress", "rabble");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let tls = c.routers["web"].tls.clone().unwrap();
    assert_eq!(tls.domains.len(), 2);
    assert_eq!(tls.domains[0].main, "example.org");
    assert_eq!(tls.domains[0].sans, vec!["*.example.org", "www.example.net"]);
    assert_eq!(tls.domains[1], TlsDomain { main: "other.org".into(), sans: vec![] });
    for (bad, why) in [
        ("ingress.http.routers.web.tls.domains[x].main=a.org", "domains[0] to domains[15]"),
        ("ingress.http.routers.web.tls.domains[99].main=a.org", "domains[0] to domains[15]"),
        ("ingress.http.routers.web.tls.domains[0].sans=a.org", "without a main domain"),
    ] {
        let t = tags(&["ingress.enable=true", bad]);
        let c = contribution(&inst("web", &t, Some(80)), "ingress", "rabble");
        assert!(c.problems.iter().any(|p| p.reason.contains(why)), "{bad}: {:?}", c.problems);
    }
}
