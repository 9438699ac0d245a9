//! DNS benchmark: dnsperf against the hub and against Unbound serving the same names
//! from `local-data`, on the same machine, with 1,000 services of 3 instances each in
//! the catalog — then once more while checks flip under load. Prints QPS, average and
//! p99 latency and lost queries for each, the ratio, and whether the answers after the
//! churn match the catalog. One agent answers DNS from the zone the hub hands the nodes:
//! it is measured the same way (one core: the agent's runtime is single-threaded), its
//! answers compared with the catalog's, and its peak memory with the 1,000-service zone
//! printed. Run it with `bash tests/bench-dns.sh [seconds]`.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;
const INSTANCES: usize = 3;
const NODES: usize = 12;

fn addr(i: usize, j: usize) -> String {
    format!("10.{}.{}.{}", i / 250, i % 250, j + 1)
}
fn node_of(i: usize, j: usize) -> usize {
    (i * INSTANCES + j) % NODES
}

#[derive(Debug, Default)]
struct Run {
    qps: f64,
    avg_ms: f64,
    p99_ms: f64,
    sent: u64,
    lost: u64,
}

fn field(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One throughput run (no per-query output), then a shorter verbose run for p99.
/// Runs send a fixed number of queries (`-n` passes over the 1,000 names, about
/// `seconds` at 100k QPS), so "lost" counts real losses, not queries still in flight
/// when a time limit strikes.
fn dnsperf(port: u16, queries: &std::path::Path, seconds: u64) -> Run {
    let args = |secs: u64| {
        let passes = (secs * 100).to_string();
        vec![
            "-s".to_owned(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-d".into(),
            queries.display().to_string(),
            "-n".into(),
            passes,
            "-l".into(),
            (secs * 10).to_string(),
            "-c".into(),
            "8".into(),
            "-q".into(),
            std::env::var("DNSPERF_Q").unwrap_or_else(|_| "100".into()),
            "-t".into(),
            "2".into(),
        ]
    };
    let out = Command::new(tool("dnsperf")).args(args(seconds)).output().expect("dnsperf");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut run = Run {
        qps: field(&text, "Queries per second:").unwrap_or(0.0),
        avg_ms: field(&text, "Average Latency (s):").unwrap_or(0.0) * 1000.0,
        sent: field(&text, "Queries sent:").unwrap_or(0.0) as u64,
        lost: field(&text, "Queries lost:").unwrap_or(0.0) as u64,
        ..Default::default()
    };
    let verbose = Command::new(tool("dnsperf")).args(args(seconds.clamp(1, 3))).arg("-v").output().expect("dnsperf -v");
    let mut lat: Vec<f64> = String::from_utf8_lossy(&verbose.stdout)
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    if !lat.is_empty() {
        run.p99_ms = lat[(lat.len() * 99 / 100).min(lat.len() - 1)] * 1000.0;
    }
    run
}

fn main() {
    // Every process guard drops inside `run`, so nothing is left behind whatever the verdict.
    std::process::exit(run());
}

/// Runs the benchmark; returns the process exit code.
fn run() -> i32 {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    eprintln!("starting a hub and {NODES} agents with {SERVICES} services x {INSTANCES} instances ...");
    let hub = Hub::start(d, &["--heartbeat-ttl", "60s"]);
    let agent_dns = free_port();
    let listen = format!("127.0.0.1:{agent_dns}");
    let agents: Vec<Agent> = (0..NODES)
        .map(|n| {
            let extra: &[&str] = if n == 0 { &["--dns-listen", &listen] } else { &[] };
            Agent::start(d, &format!("n{n}"), hub.mqtt_port, extra)
        })
        .collect();
    let mut files = vec![String::new(); NODES];
    for i in 0..SERVICES {
        for j in 0..INSTANCES {
            files[node_of(i, j)].push_str(&format!(
                "[[service]]\nname = \"s{i}\"\naddress = \"{}\"\nport = 80\n\
                 [[service.checks]]\nid = \"s{i}-{j}\"\nttl = \"1h\"\nstatus = \"passing\"\n",
                addr(i, j)
            ));
        }
    }
    for (a, f) in agents.iter().zip(&files) {
        a.write_service("bench.toml", f);
    }
    let t = Instant::now();
    wait_for("every instance", Duration::from_secs(120), || {
        let h = hub.health()?;
        if h.instances == SERVICES * INSTANCES { Ok(()) } else { Err(format!("{} instances", h.instances)) }
    });
    eprintln!("catalog ready in {:?}", t.elapsed());
    wait_for("the zone on the DNS agent", Duration::from_secs(60), || {
        let n = (0..SERVICES)
            .step_by(97)
            .filter(|i| dig(agent_dns, &format!("s{i}.service.rabble"), "A", &[]).answer.len() == INSTANCES)
            .count();
        if n == SERVICES.div_ceil(97) { Ok(()) } else { Err(format!("{n} sampled services complete")) }
    });
    eprintln!("the agent's zone complete after {:?}", t.elapsed());

    let queries = d.join("queries.txt");
    std::fs::write(&queries, (0..SERVICES).map(|i| format!("s{i}.service.rabble A\n")).collect::<String>()).unwrap();
    let local_data: String = (0..SERVICES)
        .flat_map(|i| {
            (0..INSTANCES).map(move |j| format!("  local-data: \"s{i}.service.rabble. 0 A {}\"\n", addr(i, j)))
        })
        .collect();
    let unbound = Unbound::start(d, "unbound-bench", &format!("  local-zone: \"rabble.\" static\n{local_data}"), "");

    eprintln!("dnsperf: about {seconds} s per run ...");
    let sockets: Vec<std::path::PathBuf> = agents.iter().map(|a| a.socket.clone()).collect();
    let ub = dnsperf(unbound.port, &queries, seconds);
    let hb = dnsperf(hub.dns_port, &queries, seconds);
    let ab = dnsperf(agent_dns, &queries, seconds);
    // Churn: flip TTL checks as fast as the CLI allows. It loads the machine too, so
    // Unbound is measured under the same churn for a fair comparison.
    let churn = Churn::start(sockets.clone());
    let uc = dnsperf(unbound.port, &queries, seconds);
    churn.stop();
    let churn = Churn::start(sockets);
    let hc = dnsperf(hub.dns_port, &queries, seconds);
    let (flipped, churn_secs) = churn.stop();
    drop(unbound);

    // After the churn, every answer must match the catalog exactly.
    std::thread::sleep(Duration::from_millis(500));
    let services = hub.services();
    let mut mismatches = Vec::new();
    let mut agent_mismatches = Vec::new();
    for s in services.iter().filter(|s| s.name.starts_with('s')) {
        let want: BTreeSet<String> = s
            .instances
            .iter()
            .filter(|i| i.status != rabble_shared::Status::Critical)
            .map(|i| i.address.clone())
            .collect();
        let got: BTreeSet<String> =
            dig(hub.dns_port, &format!("{}.service.rabble", s.name), "A", &["+tcp"]).data().into_iter().collect();
        if got != want {
            mismatches.push(format!("{}: dns {got:?} catalog {want:?}", s.name));
        }
        let on_node: BTreeSet<String> =
            dig(agent_dns, &format!("{}.service.rabble", s.name), "A", &["+tcp"]).data().into_iter().collect();
        if on_node != want {
            agent_mismatches.push(format!("{}: agent {on_node:?} catalog {want:?}", s.name));
        }
    }
    let agent_hwm = hwm_kb(agents[0].proc.pid());
    // The same node's work without DNS: n1 carries as many services and checks.
    let peer_hwm = hwm_kb(agents[1].proc.pid());

    let q = std::env::var("DNSPERF_Q").unwrap_or_else(|_| "100".into());
    println!();
    println!(
        "DNS benchmark: {SERVICES} services x {INSTANCES} instances; dnsperf -c 8 -q {q}, {} queries per run;",
        seconds * 100 * SERVICES as u64
    );
    println!(
        "everything on this machine ({} cores, shared with dnsperf); p99 from a shorter verbose run",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("{:<32} {:>10} {:>9} {:>9} {:>10} {:>7}", "target", "QPS", "avg ms", "p99 ms", "sent", "lost");
    let rows = [
        ("unbound (1 thread, local-data)", &ub),
        ("rabble-hub", &hb),
        ("unbound, machine under churn", &uc),
        ("rabble-hub, checks flipping", &hc),
        ("rabble-agent (a node's copy)", &ab),
    ];
    for (name, r) in rows {
        println!("{name:<32} {:>10.0} {:>9.3} {:>9.3} {:>10} {:>7}", r.qps, r.avg_ms, r.p99_ms, r.sent, r.lost);
    }
    println!();
    println!(
        "ratio hub / unbound: {:.2} steady, {:.2} under churn",
        hb.qps / ub.qps.max(1.0),
        hc.qps / uc.qps.max(1.0)
    );
    println!(
        "churn: {flipped} check flips in {churn_secs:.1} s ({:.0}/s), each a durable catalog commit",
        flipped as f64 / churn_secs
    );
    println!("ratio agent / hub: {:.2} steady (the agent on one core)", ab.qps / hb.qps.max(1.0));
    println!("after churn: {}/{} services answer exactly what the catalog says", SERVICES - mismatches.len(), SERVICES);
    println!(
        "after churn, on the agent: {}/{} services; its peak RSS (VmHWM) with the zone: {agent_hwm} kB \
         (a node with the same services and checks, without DNS: {peer_hwm} kB)",
        SERVICES - agent_mismatches.len(),
        SERVICES
    );
    for m in mismatches.iter().chain(&agent_mismatches).take(5) {
        println!("  mismatch: {m}");
    }
    // Budgets: wrong answers always fail; CI sets a generous floor for the rest.
    let min_ratio: f64 = std::env::var("RABBLE_BENCH_MIN_RATIO").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let lost_share = (hb.lost + hc.lost) as f64 / (hb.sent + hc.sent).max(1) as f64;
    let mut failed = Vec::new();
    if !mismatches.is_empty() {
        failed.push(format!("{} services answered differently from the catalog", mismatches.len()));
    }
    if !agent_mismatches.is_empty() {
        failed.push(format!("{} services answered differently on the agent", agent_mismatches.len()));
    }
    if agent_hwm.saturating_sub(peer_hwm) > 2 * 1024 {
        failed.push(format!("the zone cost the agent {} kB of peak memory (budget 2 MB)", agent_hwm - peer_hwm));
    }
    if lost_share > 0.001 {
        failed.push(format!("the hub lost {:.3} % of queries (budget 0.1 %)", lost_share * 100.0));
    }
    if hb.qps / ub.qps.max(1.0) < min_ratio {
        failed.push(format!("steady ratio {:.2} is under the budget {min_ratio}", hb.qps / ub.qps.max(1.0)));
    }
    for f in &failed {
        println!("BUDGET FAILED: {f}");
    }
    i32::from(!failed.is_empty())
}

/// A thread flipping TTL checks through `rabble-agent check` until stopped.
struct Churn {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
    started: Instant,
}

impl Churn {
    fn start(sockets: Vec<std::path::PathBuf>) -> Churn {
        let (stop, flips) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, f, agent) = (stop.clone(), flips.clone(), bin("rabble-agent"));
        let thread = std::thread::spawn(move || {
            let mut k = 0usize;
            while !s.load(Ordering::Relaxed) {
                let (i, j) = ((k * 7919) % SERVICES, k % INSTANCES);
                let verb = if (k / SERVICES).is_multiple_of(2) { "fail" } else { "pass" };
                let ok = Command::new(&agent)
                    .args(["check", verb, &format!("s{i}-{j}"), "--socket"])
                    .arg(&sockets[node_of(i, j)])
                    .status()
                    .is_ok_and(|st| st.success());
                if ok {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                k += 1;
            }
        });
        Churn { stop, flips, thread, started: Instant::now() }
    }

    /// Stops and returns (flips, seconds).
    fn stop(self) -> (u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (self.flips.load(Ordering::Relaxed), self.started.elapsed().as_secs_f64())
    }
}
