//! The KV store through Consul's HTTP API on the release hub: writes one at a time
//! (each a durable commit: fsync) and from 16 writers at once (the writer batches them
//! into shared commits), reads, a blocking read's wake-up after a write, and a template
//! re-render → task restarted. Prints figures (BENCHMARKS.md); fails past generous limits.
//! Usage: bash tests/bench-kv.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::time::{Duration, Instant};

fn put(http: &str, key: &str, value: &str) -> Duration {
    let t = Instant::now();
    let r = ureq::put(&format!("{http}/v1/kv/{key}")).send(value);
    assert!(r.is_ok_and(|mut r| r.body_mut().read_to_string().unwrap_or_default() == "true"), "put {key}");
    t.elapsed()
}

fn p(mut v: Vec<Duration>, q: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let http = hub.http.clone();
    println!("== KV through /v1/kv on the release hub (this machine's disk; every write is an fsync'd commit) ==");

    let n = 2000;
    let t = Instant::now();
    let lat: Vec<Duration> = (0..n).map(|i| put(&http, &format!("seq/{i}"), "value")).collect();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "one writer:   {n} puts in {secs:.2} s = {:.0} commits/s, p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / secs,
        p(lat.clone(), 0.5),
        p(lat, 0.99)
    );

    let writers = 16;
    let per = 250;
    let t = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let http = http.clone();
            std::thread::spawn(move || {
                (0..per).map(|i| put(&http, &format!("par/{w}/{i}"), "value")).collect::<Vec<_>>()
            })
        })
        .collect();
    let lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let secs = t.elapsed().as_secs_f64();
    let total = writers * per;
    println!(
        "{writers} writers: {total} puts in {secs:.2} s = {:.0} puts/s (batched into shared commits), p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / secs,
        p(lat.clone(), 0.5),
        p(lat, 0.99)
    );

    let t = Instant::now();
    let reads = 5000;
    let lat: Vec<Duration> = (0..reads)
        .map(|i| {
            let t = Instant::now();
            let r = ureq::get(&format!("{http}/v1/kv/seq/{}?raw", i % n)).call();
            assert!(r.is_ok());
            t.elapsed()
        })
        .collect();
    let secs = t.elapsed().as_secs_f64();
    println!("reads (?raw, one client): {:.0}/s, p99 {:.2} ms", reads as f64 / secs, p(lat, 0.99));

    // A blocking read woken by a write.
    let mut wake = Vec::new();
    for i in 0..20 {
        let r = ureq::get(&format!("{http}/v1/kv/watch")).config().http_status_as_error(false).build().call().unwrap();
        let index: u64 = r.headers().get("x-consul-index").unwrap().to_str().unwrap().parse().unwrap();
        let url = format!("{http}/v1/kv/watch?index={index}&wait=30s");
        let waiter = std::thread::spawn(move || {
            let _ = ureq::get(&url).config().http_status_as_error(false).build().call();
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        put(&http, "watch", &i.to_string());
        let woke = waiter.join().unwrap();
        wake.push(woke.duration_since(t));
    }
    println!(
        "blocking read woken by a write: p50 {:.2} ms, max {:.2} ms (the write's commit included)",
        p(wake.clone(), 0.5),
        p(wake.clone(), 1.0)
    );

    // A template re-render → the task restarted with the new value.
    let _w = Agent::worker(d, &hub, "w1");
    put(&http, "app/greeting", "v0");
    let job = r#"job "tpl" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo \"$GREETING\" > $NOMAD_ALLOC_DIR/started; while true; do sleep 0.05; done"]
      }
      template {
        data        = "GREETING={{ key \"app/greeting\" }}"
        destination = "secrets/env"
        env         = true
        splay       = "0s"
      }
    }
  }
}
"#;
    hub.run_job(&d.join("tpl.hcl"), job);
    let started = || {
        std::fs::read_dir(d.join("w1-alloc"))
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| std::fs::read_to_string(e.path().join("alloc/started")).ok())
            .unwrap_or_default()
    };
    wait_for("the task", Duration::from_secs(20), || if started().trim() == "v0" { Ok(()) } else { Err(started()) });
    let mut restart = Vec::new();
    for i in 1..=5 {
        let value = format!("v{i}");
        let t = Instant::now();
        put(&http, "app/greeting", &value);
        while started().trim() != value {
            assert!(t.elapsed() < Duration::from_secs(15), "the task did not restart with {value}");
            std::thread::sleep(Duration::from_millis(2));
        }
        restart.push(t.elapsed());
    }
    println!(
        "KV put -> template re-rendered -> task restarted with the new env: p50 {:.0} ms, max {:.0} ms (5 changes, splay 0)",
        p(restart.clone(), 0.5),
        p(restart, 1.0)
    );
    if p(wake, 1.0) > 2000.0 {
        println!("OVER BUDGET: a blocking read took over 2 s to wake");
        std::process::exit(1);
    }
}
