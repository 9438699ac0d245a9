//! Compiling a lane's table: order, round robin, middlewares, failing closed.

use super::*;
use rabble_shared::routes::{BasicAuth as BasicAuthTags, Chain, Compress, LbService, RateLimit, Router, Server};
use std::time::Duration;

fn router(rule: &str, service: &str, priority: i64, middlewares: &[&str]) -> Router {
    Router {
        rule: rule.into(),
        service: service.into(),
        entry_points: vec![],
        middlewares: middlewares.iter().map(|s| s.to_string()).collect(),
        priority,
        tls: None,
    }
}

fn table() -> LaneTable {
    let mut t = LaneTable { lane: "routing".into(), prefix: "routing".into(), index: 7, ..Default::default() };
    let servers = |urls: &[&str]| LbService {
        servers: urls.iter().map(|u| Server { url: u.to_string() }).collect(),
        pass_host_header: true,
    };
    t.services.insert("web".into(), servers(&["http://10.0.0.1:80", "http://10.0.0.2:80", "http://[fd00::3]:80"]));
    t.services.insert("api".into(), servers(&["http://10.0.0.9:8080"]));
    t.routers.insert("web".into(), router("Host(`web.lan`)", "web", 15, &["gz"]));
    t.routers.insert("api".into(), router("Host(`web.lan`) && PathPrefix(`/api`)", "api", 40, &["both"]));
    t.routers.insert("secret".into(), router("Host(`s.lan`)", "web", 14, &["auth"]));
    t.routers.insert("dangling".into(), router("Host(`d.lan`)", "nope", 14, &[]));
    t.middlewares.insert("gz".into(), Middleware::Compress(Compress {}));
    t.middlewares.insert("slow".into(), Middleware::RateLimit(RateLimit { average: 1, burst: 2 }));
    t.middlewares.insert("both".into(), Middleware::Chain(Chain { middlewares: vec!["slow".into(), "gz".into()] }));
    t.middlewares.insert("auth".into(), Middleware::BasicAuth(BasicAuthTags { users: vec!["me:x".into()] }));
    t
}

struct Req(&'static str, &'static str);

impl Request for Req {
    fn method(&self) -> &str {
        "GET"
    }
    fn host(&self) -> &str {
        self.0
    }
    fn path(&self) -> &str {
        self.1
    }
    fn query(&self) -> Option<&str> {
        None
    }
    fn header(&self, _: &str) -> Vec<&str> {
        vec![]
    }
    fn client_ip(&self) -> Option<IpAddr> {
        None
    }
}

#[test]
fn priority_order_round_robin_and_what_is_left_out() {
    let (lane, skipped) = Lane::compile(&table(), &Counters::default());
    assert_eq!(lane.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["api", "web"]);
    assert_eq!(lane.index, 7);
    let all = skipped.join("\n");
    assert!(all.contains("router secret: middleware \"auth\": user me: not an htpasswd hash"), "{all}");
    assert!(all.contains("router dangling: no service \"nope\""), "{all}");
    assert_eq!(lane.route(&Req("web.lan", "/api/x"), false).unwrap().name, "api");
    assert_eq!(lane.route(&Req("WEB.lan", "/"), false).unwrap().name, "web");
    assert!(lane.route(&Req("s.lan", "/"), false).is_none(), "an auth middleware that cannot be applied fails closed");
    // The chain resolved to its rate limit (compress is served uncompressed).
    let api = lane.route(&Req("web.lan", "/api"), false).unwrap();
    assert!(matches!(*api.steps[0], Step::RateLimit(_)) && api.steps.len() == 1);
    let web = lane.route(&Req("web.lan", "/"), false).unwrap();
    let firsts: Vec<String> = (0..4).map(|_| web.backend.order()[0].authority.clone()).collect();
    assert_eq!(firsts, vec!["10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80", "10.0.0.1:80"]);
    assert_eq!(web.backend.order().len(), 3, "every server, for retries");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_refills_over_time_per_client() {
    let l = Limiter::new(2, 3);
    let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let now = Instant::now();
    assert!((0..3).all(|_| l.allow(a, now)), "a burst of 3");
    assert!(!l.allow(a, now));
    assert!(l.allow(b, now), "another client has its own bucket");
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(l.allow(a, Instant::now()), "one token back after half a second at 2/s");
    assert!(!l.allow(a, Instant::now()));
}

#[test]
fn basic_auth_takes_bcrypt_and_sha_hashes_and_refuses_md5() {
    use base64::Engine;
    let bcrypt = bcrypt::hash("s3cret", 4).unwrap();
    let sha = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b"pw").as_ref());
    let auth = BasicAuth::parse(&[format!("me:{bcrypt}"), format!("you:{{SHA}}{sha}")]).unwrap();
    assert!(auth.check("me", "s3cret"));
    assert!(auth.check("me", "s3cret"), "remembered");
    assert!(!auth.check("me", "wrong") && !auth.check("you", "s3cret") && !auth.check("nobody", "pw"));
    assert!(auth.check("you", "pw"));
    let e = BasicAuth::parse(&["old:$apr1$abc$def".to_owned()]).unwrap_err();
    assert!(e.contains("MD5 (apr1) hashes are not supported"), "{e}");
}

#[test]
fn tls_routers_answer_tls_clients_only() {
    let mut t = table();
    t.routers.get_mut("web").unwrap().tls = Some(Default::default());
    let (lane, _) = Lane::compile(&t, &Counters::default());
    assert!(lane.route(&Req("web.lan", "/"), false).is_none());
    assert_eq!(lane.route(&Req("web.lan", "/"), true).unwrap().name, "web");
    assert_eq!(lane.route(&Req("web.lan", "/api"), true).unwrap().name, "web", "api has no tls: web answers");
}
