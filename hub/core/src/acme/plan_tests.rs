//! Wanted certificates, renewal times and DER validity.

use super::*;
use rabble_shared::routes::{Router, RouterTls, TlsDomain};

fn router(rule: &str, resolver: Option<&str>, domains: Vec<TlsDomain>) -> Router {
    Router {
        rule: rule.into(),
        service: "s".into(),
        entry_points: vec![],
        middlewares: vec![],
        priority: 1,
        tls: Some(RouterTls { cert_resolver: resolver.map(str::to_owned), domains }),
    }
}

#[test]
fn one_certificate_per_router_from_its_hosts_or_its_domains() {
    let mut ingress = LaneTable { lane: "ingress".into(), ..Default::default() };
    ingress.routers.insert("a".into(), router("Host(`B.example.org`) || Host(`a.example.org`)", Some("le"), vec![]));
    ingress.routers.insert("files".into(), router("Host(`files.local`)", None, vec![]));
    ingress.routers.insert(
        "w".into(),
        router(
            "PathPrefix(`/`)",
            Some("le"),
            vec![TlsDomain { main: "example.org".into(), sans: vec!["*.example.org".into()] }],
        ),
    );
    ingress.routers.insert("ip".into(), router("Host(`10.0.0.5`) || Host(`nas`)", Some("le"), vec![]));
    let mut routing = LaneTable { lane: "routing".into(), ..Default::default() };
    routing.routers.insert("a2".into(), router("Host(`b.example.org`) || Host(`a.example.org`)", Some("le"), vec![]));
    let mut problems = vec![];
    let w = wanted(&[ingress, routing], &mut problems);
    let keys: Vec<_> = w.keys().map(|k| k.domains.join(",")).collect();
    assert_eq!(keys, vec!["b.example.org,a.example.org", "example.org,*.example.org"]);
    let ab = w.iter().find(|(k, _)| k.domains[0] == "b.example.org").unwrap().1;
    assert_eq!(ab.iter().cloned().collect::<Vec<_>>(), vec!["ingress", "routing"], "one certificate, both lanes");
    assert_eq!(problems.len(), 3, "{problems:?}"); // 10.0.0.5, nas, then nothing left for router ip
    assert!(problems.iter().any(|p| p.contains("\"10.0.0.5\"")), "{problems:?}");
}

#[test]
fn issuable_names() {
    for ok in ["example.org", "*.example.org", "a-b.c.example.org"] {
        assert!(issuable(ok), "{ok}");
    }
    for bad in ["nas", "10.0.0.5", "*.org.*", "a..b", "-a.org", "a.org-", "a b.org", "x.*.org", ""] {
        assert!(!issuable(bad), "{bad}");
    }
}

#[test]
fn renewal_is_a_third_of_the_lifetime_at_most_30_days_before_expiry() {
    let day = 86_400;
    assert_eq!(renew_at(0, 90 * day), 60 * day);
    assert_eq!(renew_at(0, 6 * day), 4 * day);
    assert_eq!(renew_at(0, 5 * 365 * day), 5 * 365 * day - 30 * day);
    assert_eq!(renew_at(10, 5), 5);
}

#[test]
fn validity_from_real_certificates_and_no_panic_on_garbage() {
    let mut params = rcgen::CertificateParams::new(vec!["a.example.org".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2026, 11, 24);
    params.not_after = rcgen::date_time_ymd(2051, 2, 22);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    // 2026-11-24 is 1795478400; 2051-02-22 (past 2049: GeneralizedTime) is 2560636800.
    assert_eq!(validity(cert.der()), Some((1_795_478_400, 2_560_636_800)));
    let der = cert.der().to_vec();
    for cut in 0..der.len() {
        let _ = validity(&der[..cut]);
    }
    let mut rng = fastrand::Rng::with_seed(9);
    for _ in 0..2000 {
        let mut d = der.clone();
        for _ in 0..4 {
            let i = rng.usize(..d.len());
            d[i] = rng.u8(..);
        }
        let _ = validity(&d);
    }
    assert_eq!(validity(b""), None);
}
