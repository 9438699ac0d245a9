//! The web UI's weight and speed on a big homelab: a catalog of 100 nodes (heartbeats
//! included), 1,000 service instances with a check each, and one job of 200 allocations is
//! written to redb, the release hub is started on it, and every page is fetched as a
//! browser does (gzip): its size, and the time to the last byte (p50 / max of 20). A first
//! visit's weight is the overview plus the stylesheet and the script. Fails past generous
//! budgets (`RABBLE_BENCH_MAX_PAGE_MS`, default 1,000; first load 150 KB).
//! Usage: bash tests/bench-ui.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_hub::catalog::writer::{Acker, Done, Input, Writer};
use rabble_hub::catalog::{Catalog, NodeUpdate, Store, Update};
use rabble_hub::scheduler::eval;
use rabble_shared::msg::{
    CheckKind, CheckState, DiskUse, DriverFacts, Heartbeat, NodeFacts, OsFacts, ServiceRegistration,
};
use rabble_shared::{NodeId, Status, TopicId};
use rabble_tests::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: usize = 100;
const SERVICES_PER_NODE: usize = 10;
const ALLOCS: u32 = 200;

fn facts(i: usize) -> NodeFacts {
    NodeFacts {
        name: format!("pi-{i:03}"),
        hostname: format!("pi-{i:03}"),
        arch: "aarch64".into(),
        os: OsFacts { name: "Debian".into(), version: "12".into(), kernel: "6.6".into() },
        cpus: 4,
        memory_bytes: 8 << 30,
        disks: vec![],
        addresses: vec![],
        advertise: format!("10.0.{}.{}", i / 250, i % 250 + 1),
        agent_version: "0.1.0".into(),
        node_class: "pi4".into(),
        datacenter: "dc1".into(),
        meta: Default::default(),
        drivers: [(
            "raw_exec".to_owned(),
            DriverFacts { healthy: true, version: String::new(), detail: String::new() },
        )]
        .into(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    }
}

fn updates() -> Vec<Update> {
    let mut c = Catalog::default();
    let mut out = Vec::new();
    for i in 0..NODES {
        let node = NodeId::new(format!("pi-{i:03}")).unwrap();
        out.push(Update::Node(node.clone(), NodeUpdate::Facts(Box::new(facts(i)))));
        out.push(Update::Node(node.clone(), NodeUpdate::Online));
        out.push(Update::Node(
            node.clone(),
            NodeUpdate::Heartbeat(Heartbeat {
                seq: 1,
                uptime_s: 86_400,
                cpu_percent: (i % 100) as f32,
                load: [0.5, 0.4, 0.3],
                memory_used_bytes: (i as u64 % 8) << 30,
                memory_total_bytes: 8 << 30,
                disks: vec![DiskUse { mount: "/".into(), used_bytes: 20 << 30, total_bytes: 32 << 30 }],
                temperature_c: Some(48.0),
                throttled: None,
                assignments_refused: 0,
                metrics: None,
            }),
        ));
        for s in 0..SERVICES_PER_NODE {
            let key = TopicId::new(format!("svc{s}")).unwrap();
            let name = format!("service-{:03}", (i * SERVICES_PER_NODE + s) % 300);
            let reg = ServiceRegistration {
                id: format!("svc{s}"),
                name: name.clone(),
                tags: vec!["routing.enable=true".into(), format!("env=lab{}", s % 3)],
                address: None,
                port: Some(8000 + s as u16),
                meta: Default::default(),
                source: String::new(),
            };
            out.push(Update::Node(node.clone(), NodeUpdate::Service(key.clone(), Some(reg))));
            let check = CheckState {
                id: format!("service:svc{s}"),
                name: format!("HTTP on {s}"),
                service_id: Some(format!("svc{s}")),
                kind: CheckKind::Http,
                status: if (i + s) % 50 == 0 { Status::Critical } else { Status::Passing },
                output: "HTTP GET http://10.0.0.1:8000/health: 200 OK".into(),
                since_ms: 1_796_000_000_000,
            };
            out.push(Update::Node(node.clone(), NodeUpdate::Check(key, Some(check))));
        }
    }
    for u in &out {
        c.apply(u.clone());
    }
    let src = format!(
        "job \"web\" {{\n group \"g\" {{\n count = {ALLOCS}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{ command = \"/bin/sleep\" }}\n resources {{\n cpu = 10\n memory = 10\n }}\n }}\n }}\n}}\n"
    );
    let spec = rabble_hub::jobspec::parse("web.hcl", &src, &Default::default()).unwrap().job;
    let reg = eval::register(spec, 1_796_000_000_000);
    c.apply(reg.clone());
    out.push(reg);
    let mut n = 0u64;
    let placed = eval::evaluate(&c, &Default::default(), None, 1_796_000_000_000, &mut || {
        n += 1;
        rabble_shared::AllocId::new(format!("{n:016x}")).unwrap()
    });
    out.extend(placed.updates);
    out
}

struct NoAck;
impl Acker for NoAck {
    type Token = ();
    async fn ack(&self, _: ()) {}
}

/// Commits `updates` to a fresh catalog in `data_dir` through the writer, as a hub would.
fn write_catalog(data_dir: &std::path::Path, updates: Vec<Update>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (store, catalog) = Store::open(data_dir).unwrap();
        let (snap_tx, snap_rx) = tokio::sync::watch::channel(Arc::new(catalog.clone()));
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let (events, _) = tokio::sync::broadcast::channel(16);
        let applier = rabble_hub::catalog::apply::Applier {
            store: Arc::new(store),
            observers: vec![],
            catalog,
            snapshot: snap_tx,
            events,
            stats: Default::default(),
        };
        let writer = Writer {
            commit: rabble_hub::catalog::writer::Commit::Local(Box::new(applier)),
            rx,
            acker: NoAck,
            heartbeat_ttl: Duration::from_secs(3600),
            restart_grace: Duration::from_secs(3600),
            snapshot: snap_rx,
            live: Default::default(),
        };
        let task = tokio::spawn(writer.run());
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        for u in updates {
            tx.send(Input { source: "bench".into(), update: Some(u), done: Done::Nothing }).await.unwrap();
        }
        tx.send(Input { source: "bench".into(), update: None, done: Done::Reply(reply_tx) }).await.unwrap();
        reply_rx.await.unwrap().unwrap();
        drop(tx);
        let _ = task.await;
    });
}

/// GETs `url` as a browser does (gzip): (bytes on the wire, time to the last byte).
fn fetch(url: &str) -> (usize, Duration) {
    let t = Instant::now();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "-w", "%{http_code} %{size_download}", url])
        .output()
        .unwrap();
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, size) = text.split_once(' ').unwrap();
    assert_eq!(code, "200", "{url}");
    (size.parse().unwrap(), took)
}

fn main() {
    let max_ms: u128 = std::env::var("RABBLE_BENCH_MAX_PAGE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    std::fs::create_dir_all(&data).unwrap();
    write_catalog(&data, updates());
    let hub = Hub::start(dir.path(), &[]);
    let job: rabble_shared::api::JobView = hub.get("/api/v1/jobs/web").unwrap();
    let alloc = job.allocations[0].id.to_string();
    println!(
        "== the web UI: {NODES} nodes, {} service instances with a check each, {} allocations ==",
        NODES * SERVICES_PER_NODE,
        job.allocations.len()
    );
    let pages = [
        "/ui/".to_owned(),
        "/ui/nodes".into(),
        "/ui/nodes/pi-042".into(),
        "/ui/jobs".into(),
        "/ui/jobs/web".into(),
        format!("/ui/allocations/{alloc}"),
        "/ui/services".into(),
        "/ui/routing".into(),
        "/ui/kv".into(),
    ];
    let mut worst = 0u128;
    let mut overview = 0;
    for p in &pages {
        let url = format!("{}{p}", hub.http);
        let mut times: Vec<Duration> = (0..20).map(|_| fetch(&url)).map(|(_, t)| t).collect();
        times.sort();
        let (size, _) = fetch(&url);
        if p == "/ui/" {
            overview = size;
        }
        worst = worst.max(times[19].as_millis());
        println!(
            "{p:<36} {:>6.1} KB gzipped   p50 {:>5.1} ms   max {:>5.1} ms",
            size as f64 / 1024.0,
            times[10].as_secs_f64() * 1000.0,
            times[19].as_secs_f64() * 1000.0
        );
    }
    let get = |p: &str| {
        String::from_utf8(
            std::process::Command::new("curl").args(["-s", &format!("{}{p}", hub.http)]).output().unwrap().stdout,
        )
        .unwrap()
    };
    // The pages hold what they should (the figures are for full pages, not empty ones).
    assert_eq!(get("/ui/nodes").matches("href=\"/ui/nodes/pi-").count(), NODES);
    assert_eq!(get("/ui/services").matches("<tr id=").count(), NODES * SERVICES_PER_NODE);
    assert_eq!(get("/ui/jobs/web").matches("href=\"/ui/allocations/").count(), ALLOCS as usize);
    let html = get("/ui/");
    assert_eq!(html.matches("href=\"/ui/nodes/pi-").count(), NODES);
    let assets: usize =
        html.split('"').filter(|s| s.starts_with("/ui/assets/")).map(|a| fetch(&format!("{}{a}", hub.http)).0).sum();
    let first = overview + assets;
    println!(
        "first load (overview + stylesheet + script): {:.1} KB gzipped (assets {:.1} KB); goal <= 150 KB",
        first as f64 / 1024.0,
        assets as f64 / 1024.0
    );
    println!("(each time includes curl's own start, ~5 ms here)");
    assert!(first <= 150 * 1024, "the first load is {first} bytes");
    assert!(worst <= max_ms, "a page took {worst} ms (budget {max_ms} ms)");
}
