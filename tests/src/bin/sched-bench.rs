//! Scheduler throughput: the pure evaluation on 5,000 simulated nodes placing a
//! 10,000-allocation job, then the same placements committed through the catalog writer
//! to redb. Prints figures; `RABBLE_BENCH_MIN_PLACEMENTS` (per second) makes it fail
//! below a floor. Anchor: Nomad's C1M placed ~3,750 containers/s on 5,000 nodes.
//!
//! Usage: sched-bench [nodes] [allocations]

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use rabble_hub::catalog::writer::{Acker, Done, Input, Writer};
use rabble_hub::catalog::{Catalog, NodeUpdate, Store, Update};
use rabble_hub::scheduler::eval;
use rabble_shared::NodeId;
use rabble_shared::msg::{DriverFacts, NodeFacts, OsFacts};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

fn facts(i: usize) -> NodeFacts {
    NodeFacts {
        name: format!("node-{i}"),
        hostname: format!("node-{i}"),
        arch: if i.is_multiple_of(3) { "x86_64".into() } else { "aarch64".into() },
        os: OsFacts { name: "Debian".into(), version: "12".into(), kernel: "6.6".into() },
        cpus: 4,
        memory_bytes: 8 << 30,
        disks: vec![],
        addresses: vec![],
        advertise: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
        agent_version: "0.1.0".into(),
        node_class: String::new(),
        datacenter: "dc1".into(),
        meta: [("rack".to_owned(), format!("r{}", i % 20))].into(),
        drivers: [("docker".to_owned(), DriverFacts { healthy: true, version: "28".into(), detail: String::new() })]
            .into(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    }
}

struct NoAck;
impl Acker for NoAck {
    type Token = ();
    async fn ack(&self, _: ()) {}
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let count: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut catalog = Catalog::default();
    for i in 0..nodes {
        catalog.apply(Update::Node(NodeId::new(format!("node-{i}")).unwrap(), NodeUpdate::Facts(Box::new(facts(i)))));
    }
    let src = (
        "job \"c10k\" {{\n group \"g\" {{\n count = 1\n task \"t\" {{\n driver = \"docker\"\n config {{ image = \"x\" }}\n resources {{\n cpu = 100\n memory = 64\n }}\n }}\n }}\n}}\n"
    )
        .replace("{{", "{")
        .replace("}}", "}");
    let mut spec = rabble_hub::jobspec::parse("c10k.hcl", &src, &Default::default()).map(|p| p.job);
    if let Ok(s) = spec.as_mut() {
        s.groups[0].count = count; // past the job-file cap: this is a load test
    }
    let spec = spec.unwrap_or_else(|e| panic!("{e}"));
    catalog.apply(eval::register(spec, 0));
    let mut n = 0u64;
    let t = Instant::now();
    let out = eval::evaluate(&catalog, &BTreeSet::new(), None, 0, &mut || {
        n += 1;
        rabble_shared::AllocId::new(format!("{n:016x}")).unwrap()
    });
    let pure = t.elapsed();
    let placed = out.updates.len();
    let rate = placed as f64 / pure.as_secs_f64();
    println!("== scheduler: {count} allocations on {nodes} nodes ==");
    println!("pure evaluation   {placed} placements in {:.3} s  {:>10.0} placements/s", pure.as_secs_f64(), rate);

    // The same placements through the writer: applied, committed to redb (one fsync
    // per batch), observed.
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let written = rt.block_on(async {
        let (store, _) = Store::open(dir.path()).unwrap();
        let (snap_tx, snap_rx) = tokio::sync::watch::channel(Arc::new(catalog.clone()));
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let (events, _) = tokio::sync::broadcast::channel(16);
        let applier = rabble_hub::catalog::apply::Applier {
            store: Arc::new(store),
            observers: vec![],
            catalog: catalog.clone(),
            snapshot: snap_tx,
            events,
            stats: Default::default(),
        };
        let writer = Writer {
            commit: rabble_hub::catalog::writer::Commit::Local(Box::new(applier)),
            rx,
            acker: NoAck,
            heartbeat_ttl: std::time::Duration::from_secs(3600),
            restart_grace: std::time::Duration::from_secs(3600),
            snapshot: snap_rx,
            live: Default::default(),
        };
        let task = tokio::spawn(writer.run());
        let t = Instant::now();
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        for u in out.updates {
            tx.send(Input { source: "bench".into(), update: Some(u), done: Done::Nothing }).await.unwrap();
        }
        tx.send(Input { source: "bench".into(), update: None, done: Done::Reply(reply_tx) }).await.unwrap();
        let committed = reply_rx.await.unwrap().unwrap();
        let took = t.elapsed();
        drop(tx);
        let _ = task.await;
        (took, committed.index)
    });
    let rate_w = placed as f64 / written.0.as_secs_f64();
    println!(
        "through the writer {placed} placements in {:.3} s  {:>10.0} placements/s (durable, catalog index {})",
        written.0.as_secs_f64(),
        rate_w,
        written.1
    );
    println!("anchor: Nomad C1M ~3,750 containers/s on 5,000 nodes; goal >= 10,000 placements/s");
    if let Some(min) = std::env::var("RABBLE_BENCH_MIN_PLACEMENTS").ok().and_then(|s| s.parse::<f64>().ok())
        && (rate < min || rate_w < min)
    {
        eprintln!("FAIL: under {min} placements/s");
        std::process::exit(1);
    }
}
