//! What ACL tokens and HTTPS cost on the release hub: a catalog read and a KV write
//! anonymously and with a token (the token check: SHA-256 of the secret and a lookup) —
//! reads alternated one by one and compared by median latency, so the machine's noise
//! falls on both alike; and a request on a fresh
//! connection over HTTPS against plain HTTP (the TLS handshake). Prints figures
//! (BENCHMARKS.md); fails when the token costs over `RABBLE_BENCH_MAX_TOKEN_COST` (a
//! fraction, default 0.25 — generous: the goal is under 0.05).
//! Usage: bash tests/bench-acl.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::time::{Duration, Instant};

fn p(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// `n` requests on one keep-alive connection: (requests/s, p99 ms).
fn run(agent: &ureq::Agent, n: usize, mut one: impl FnMut(&ureq::Agent, usize)) -> (f64, f64) {
    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for i in 0..n {
        let t1 = Instant::now();
        one(agent, i);
        lat.push(t1.elapsed());
    }
    (n as f64 / t.elapsed().as_secs_f64(), p(&mut lat, 0.99))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let https_port = free_port();
    let listen = format!("127.0.0.1:{https_port}");
    let (hub, tls) = Hub::start_tls(d, &["--https-listen", &listen]);
    let root = hub.bootstrap_acl();
    let token =
        hub.token_with(&root, "bench", "service \"\" { policy = \"read\" }\nkv \"bench/\" { policy = \"write\" }\n");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let http = hub.http.clone();
    println!("== ACL tokens and HTTPS on the release hub (one client, keep-alive; reads alternate one by one) ==");

    let read = |tok: Option<String>| {
        let url = format!("{http}/v1/catalog/services");
        move |a: &ureq::Agent, _: usize| {
            let mut r = a.get(&url);
            if let Some(t) = &tok {
                r = r.header("x-consul-token", t);
            }
            let mut r = r.call().unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.body_mut().read_to_string();
        }
    };
    // Anonymous and token requests alternate one by one, so both see the same machine (a
    // shared VM's speed swings 2x within seconds); the cost compares their median latencies.
    let (mut anon_lat, mut with_lat) = (Vec::new(), Vec::new());
    let (anon_one, with_one) = (read(None), read(Some(token.clone())));
    for i in 0..15_000 {
        let t1 = Instant::now();
        if i % 2 == 0 {
            anon_one(&agent, i);
            anon_lat.push(t1.elapsed());
        } else {
            with_one(&agent, i);
            with_lat.push(t1.elapsed());
        }
    }
    let rate = |v: &[Duration]| v.len() as f64 / v.iter().sum::<Duration>().as_secs_f64();
    let (anon_rate, with_rate) = (rate(&anon_lat), rate(&with_lat));
    let (anon_p50, with_p50) = (p(&mut anon_lat, 0.5), p(&mut with_lat, 0.5));
    let anon = (anon_rate, p(&mut anon_lat, 0.99));
    let with = (with_rate, p(&mut with_lat, 0.99));
    let read_cost = with_p50 / anon_p50 - 1.0;
    println!(
        "catalog read   anonymous {:>7.0} req/s p99 {:.2} ms | with a token {:>7.0} req/s p99 {:.2} ms | token cost {:+.1} %",
        anon.0,
        anon.1,
        with.0,
        with.1,
        read_cost * 100.0
    );

    // KV writes need a token after bootstrap: a token that may write vs the management token
    // (no policy lookup) — the policy evaluation's share of an fsync'd commit.
    let write = |tok: String, prefix: &'static str| {
        let http = http.clone();
        move |a: &ureq::Agent, i: usize| {
            let r = a.put(&format!("{http}/v1/kv/bench/{prefix}{i}")).header("x-consul-token", &tok).send("v").unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let (mut mgmt, mut scoped) = ((0.0f64, f64::MAX), (0.0f64, f64::MAX));
    for round in 0..3 {
        let m = run(&agent, 500, write(root.clone(), ["m0/", "m1/", "m2/"][round]));
        let s = run(&agent, 500, write(token.clone(), ["s0/", "s1/", "s2/"][round]));
        mgmt = (mgmt.0.max(m.0), mgmt.1.min(m.1));
        scoped = (scoped.0.max(s.0), scoped.1.min(s.1));
    }
    println!(
        "KV write       management {:>6.0} req/s p99 {:.2} ms | policy token {:>6.0} req/s p99 {:.2} ms | policy cost {:+.1} %",
        mgmt.0,
        mgmt.1,
        scoped.0,
        scoped.1,
        (1.0 - scoped.0 / mgmt.0) * 100.0
    );

    // A fresh connection each request: HTTPS (handshake included) against plain HTTP.
    let ca = std::fs::read(&tls.ca).unwrap();
    let roots: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca)
        .filter_map(|i| match i.unwrap() {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    let fresh = |https: bool| {
        let mut lat = Vec::new();
        for _ in 0..200 {
            let tls_cfg =
                ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&roots)).build();
            let a: ureq::Agent = ureq::Agent::config_builder().tls_config(tls_cfg).build().into();
            let url = if https {
                format!("https://localhost:{https_port}/api/v1/health")
            } else {
                format!("{http}/api/v1/health")
            };
            let t = Instant::now();
            let mut r = a.get(&url).call().unwrap();
            let _ = r.body_mut().read_to_string();
            lat.push(t.elapsed());
        }
        (p(&mut lat.clone(), 0.5), p(&mut lat, 0.99))
    };
    let (h50, h99) = fresh(false);
    let (s50, s99) = fresh(true);
    println!(
        "fresh connection  HTTP p50 {h50:.2} ms p99 {h99:.2} ms | HTTPS p50 {s50:.2} ms p99 {s99:.2} ms | handshake ~{:.2} ms",
        s50 - h50
    );
    let limit: f64 = std::env::var("RABBLE_BENCH_MAX_TOKEN_COST").ok().and_then(|v| v.parse().ok()).unwrap_or(0.25);
    assert!(
        read_cost < limit,
        "the token check costs {:.1} % of a catalog read (limit {:.0} %)",
        read_cost * 100.0,
        limit * 100.0
    );
}
