//! The hub's Consul API under a real Traefik 3 watching it (consulCatalog, `watch=true`)
//! with 1,000 services: how fast 1,000 external services register (each a durable
//! commit), how long Traefik takes to build all 1,000 routers from the hub, how long a
//! new service takes to be routable through Traefik, and what the watch costs the hub
//! (CPU while idle and per change, peak memory). Prints figures; fails past generous
//! limits (all routers within 120 s, a change within 15 s). Usage: bash tests/bench-consul.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;

/// A backend answering `ok` to anything.
fn backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn register(hub: &Hub, i: usize, port: u16) {
    let body = format!(
        r#"{{"Node": "ext-{}", "Address": "127.0.0.1", "Service": {{"Service": "svc-{i}", "Port": {port},
           "Tags": ["routing.enable=true", "routing.http.routers.svc-{i}.rule=Host(`svc-{i}.lan`)"]}}}}"#,
        i % 20
    );
    let r =
        ureq::put(&format!("{}/v1/catalog/register", hub.http)).content_type("application/json").send(body.as_str());
    assert!(r.is_ok(), "register svc-{i}: {r:?}");
}

/// Routers Traefik built from the catalog.
fn traefik_routers(api: u16) -> usize {
    let Ok(mut r) = ureq::get(&format!("http://127.0.0.1:{api}/api/rawdata")).call() else { return 0 };
    let v: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
    v["routers"].as_object().map_or(0, |m| m.keys().filter(|k| k.ends_with("@consulcatalog")).count())
}

/// The process's CPU time so far (user + system), seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // After the command: state, ppid, ... utime is field 14, stime 15 (1-based); here
    // the state (a letter) is not in `f`, so utime is f[10] and stime f[11].
    (f.get(10).unwrap_or(&0) + f.get(11).unwrap_or(&0)) as f64 / 100.0
}

fn routable(web: u16, host: &str) -> bool {
    ureq::get(&format!("http://127.0.0.1:{web}/")).header("Host", host).call().is_ok()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let hub_pid = hub.proc.pid();
    let port = backend();

    let start = Instant::now();
    for i in 0..SERVICES {
        register(&hub, i, port);
    }
    let reg = start.elapsed();
    println!(
        "== the Consul API with {SERVICES} services under a Traefik 3 watch (consulCatalog, watch=true) ==\n\
         {SERVICES} services registered through /v1/catalog/register, one by one: {:.2} s ({:.0}/s, each a durable commit)",
        reg.as_secs_f64(),
        SERVICES as f64 / reg.as_secs_f64()
    );

    let (web, api) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{}", hub.http.rsplit(':').next().unwrap());
    let mut cmd = Command::new(tool("traefik"));
    cmd.args([
        &format!("--entrypoints.web.address=127.0.0.1:{web}"),
        &format!("--entrypoints.traefik.address=127.0.0.1:{api}"),
        "--api.insecure=true",
        "--providers.consulcatalog.prefix=routing",
        "--providers.consulcatalog.exposedbydefault=false",
        "--providers.consulcatalog.watch=true",
        &format!("--providers.consulcatalog.endpoint.address={endpoint}"),
        "--log.level=ERROR",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]);
    let cpu0 = cpu_seconds(hub_pid);
    let t0 = Instant::now();
    let _traefik = Proc::spawn("traefik", &mut cmd, d);
    let all = loop {
        if traefik_routers(api) >= SERVICES {
            break t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(120) {
            println!("OVER BUDGET: Traefik had {} of {SERVICES} routers after 120 s", traefik_routers(api));
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "Traefik started -> all {SERVICES} routers built from the hub: {:.2} s (hub CPU meanwhile: {:.2} s)",
        all.as_secs_f64(),
        cpu_seconds(hub_pid) - cpu0
    );
    assert!(routable(web, "svc-7.lan"), "Traefik does not route svc-7");

    // Steady state: the watch's blocking queries, nothing changing.
    let c = cpu_seconds(hub_pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle = cpu_seconds(hub_pid) - c;
    println!("hub CPU while Traefik watches and nothing changes: {:.1} % of a core", idle * 10.0);

    // Changes: a new service, routable through Traefik.
    let mut lat = Vec::new();
    let c = cpu_seconds(hub_pid);
    for n in 0..5 {
        let i = SERVICES + n;
        let t = Instant::now();
        register(&hub, i, port);
        let host = format!("svc-{i}.lan");
        while !routable(web, &host) {
            if t.elapsed() > Duration::from_secs(15) {
                println!("OVER BUDGET: svc-{i} not routable through Traefik after 15 s");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_secs(2)); // let Traefik's re-reads settle
    }
    let per_change = (cpu_seconds(hub_pid) - c) / 5.0;
    lat.sort_by(f64::total_cmp);
    println!(
        "new service registered -> routable through Traefik: median {:.0} ms, max {:.0} ms (5 changes; \
         hub CPU per change, Traefik's re-reads included: {:.2} s)",
        lat[2], lat[4], per_change
    );
    println!("hub peak RSS: {} kB", hwm_kb(hub_pid));
}
