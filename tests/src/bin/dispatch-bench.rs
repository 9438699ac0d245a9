//! A render-farm queue: a hub and 5 agents, one parameterized job whose task sleeps 1 s,
//! N dispatches (1,000 by default) sent as fast as the API takes them, each node running
//! `SLOTS` at a time (the task's memory is a tenth of a node's). Prints the dispatch rate,
//! the time to drain the queue, and the scheduling overhead: how long a slot sat idle per
//! task beyond the task's own second. Fails over `RABBLE_BENCH_MAX_IDLE_MS` per task.
//! Usage: bash tests/bench-dispatch.sh [dispatches]

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_shared::api::{JobView, NodeView};
use rabble_shared::job::dispatch::Dispatched;
use rabble_tests::*;
use std::time::{Duration, Instant};

const AGENTS: usize = 5;
const SLOTS: u64 = 10;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let agents: Vec<Agent> = (0..AGENTS).map(|i| Agent::worker(d, &hub, &format!("n{i}"))).collect();
    let nodes: Vec<NodeView> = hub.get("/api/v1/nodes").unwrap();
    let node_mb = nodes.iter().filter_map(|v| v.facts.as_ref()).map(|f| f.memory_bytes >> 20).min().unwrap();
    // A little under a tenth, so exactly SLOTS fit on a node.
    let task_mb = node_mb / SLOTS - node_mb / SLOTS / 20;
    let job = format!(
        "job \"farm\" {{\n type = \"batch\"\n parameterized {{\n meta_required = [\"frame\"]\n }}\n group \"g\" {{\n task \"t\" {{\n driver = \"raw_exec\"\n config {{\n command = \"/bin/sleep\"\n args = [\"1\"]\n }}\n resources {{\n cpu = 10\n memory = {task_mb}\n }}\n }}\n }}\n}}\n"
    );
    hub.run_job(&d.join("farm.nomad.hcl"), &job);
    let t0 = Instant::now();
    for i in 0..n {
        let body = serde_json::json!({"meta": {"frame": i.to_string()}});
        let _: Dispatched = hub.post("/api/v1/jobs/farm/dispatch", &body).unwrap();
    }
    let sent = t0.elapsed();
    let mut most_queued = 0;
    wait_for("the queue drained", Duration::from_secs(600 + n as u64), || {
        let v: JobView = hub.get("/api/v1/jobs/farm").map_err(|e| e.to_string())?;
        let q = v.queue.ok_or("no queue")?;
        most_queued = most_queued.max(q.queued);
        if q.failed > 0 {
            panic!("a frame failed: {q:?}");
        }
        if q.complete as usize == n { Ok(()) } else { Err(format!("{q:?}")) }
    });
    let drained = t0.elapsed();
    let slots = AGENTS as u64 * SLOTS;
    let ideal = Duration::from_secs((n as u64).div_ceil(slots));
    let idle_ms = (drained.as_secs_f64() * slots as f64 - n as f64) * 1000.0 / n as f64;
    println!("== {n} dispatches of a 1 s raw_exec task on {AGENTS} agents, {SLOTS} slots each ==");
    println!(
        "dispatched              {n} in {:.2} s ({:.0}/s, each durable before the next)",
        sent.as_secs_f64(),
        n as f64 / sent.as_secs_f64()
    );
    println!("most queued at once     {most_queued}");
    println!(
        "queue drained after     {:.2} s (ideal {} s: {n} tasks / {slots} slots)",
        drained.as_secs_f64(),
        ideal.as_secs()
    );
    println!("scheduling overhead     {idle_ms:.0} ms of slot time per task beyond its own second");
    drop(agents);
    if let Some(max) = std::env::var("RABBLE_BENCH_MAX_IDLE_MS").ok().and_then(|s| s.parse::<f64>().ok())
        && idle_ms > max
    {
        println!("OVER BUDGET: {idle_ms:.0} ms idle per task (limit {max} ms)");
        std::process::exit(1);
    }
}
