//! Running work at scale: a hub and 10 agents (the shipped x86_64 musl build), one job
//! of 200 raw_exec allocations. Prints the time until all run, p50/p99 per allocation
//! (submitted → reported running), each agent's memory with its 20 running allocations,
//! and the time to replace a killed node's 20. Fails over `RABBLE_BENCH_MAX_HWM_KB`.
//! Usage: bash tests/bench-jobs.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_shared::alloc::{ClientStatus, DesiredStatus};
use rabble_shared::api::{JobView, NodeStatus};
use rabble_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

const AGENTS: usize = 10;
const COUNT: u32 = 200;

fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn running(hub: &Hub) -> Vec<rabble_shared::alloc::Allocation> {
    let j: JobView = hub.get("/api/v1/jobs/bench").unwrap();
    j.allocations
        .into_iter()
        .filter(|a| a.desired == DesiredStatus::Run && a.client_status == ClientStatus::Running)
        .collect()
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let key = hub.key();
    let url = format!("mqtt://127.0.0.1:{}", hub.mqtt_port);
    let mut agents: Vec<Agent> = (0..AGENTS)
        .map(|i| {
            let name = format!("n{i:02}");
            let alloc = d.join(format!("{name}-alloc")).display().to_string();
            let cmd = Command::new(release_agent("x86_64-unknown-linux-musl"));
            Agent::spawn(
                cmd,
                d,
                &name,
                &url,
                d.join(format!("{name}-svc")),
                &["--hub-key", &key, "--alloc-dir", &alloc, "--no-docker"],
            )
        })
        .collect();
    for a in &mut agents {
        a.alloc_dir = Some(d.join(format!("{}-alloc", a.name)));
        hub.wait_node(&a.name, NodeStatus::Up, Duration::from_secs(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle: Vec<u64> = agents.iter().map(|a| status_kb(a.proc.pid(), "VmRSS:")).collect();
    let job = format!(
        "job \"bench\" {{\n group \"g\" {{\n count = {COUNT}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{\n command = \"/bin/sleep\"\n args = [\"600\"]\n }}\n resources {{\n cpu = 10\n memory = 10\n }}\n }}\n }}\n}}\n"
    );
    let t0 = Instant::now();
    let t0_ms = rabble_shared::support::clock::now_ms();
    hub.run_job(&d.join("bench.nomad.hcl"), &job);
    wait_for("200 allocations running", Duration::from_secs(120), || {
        let n = running(&hub).len();
        if n == COUNT as usize { Ok(()) } else { Err(format!("{n} running")) }
    });
    let all = t0.elapsed();
    let mut lat: Vec<u64> = running(&hub).iter().map(|a| a.modify_ms.saturating_sub(t0_ms)).collect();
    lat.sort();
    println!("== {COUNT} raw_exec allocations on {AGENTS} agents ==");
    println!("all running after       {:.2} s", all.as_secs_f64());
    println!(
        "per allocation          p50 {} ms, p99 {} ms, max {} ms (submitted -> reported running)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );
    std::thread::sleep(Duration::from_secs(3));
    let per_node: Vec<(String, usize)> = agents
        .iter()
        .map(|a| (a.name.clone(), running(&hub).iter().filter(|x| x.node.as_str() == a.name).count()))
        .collect();
    let hwm: Vec<u64> = agents.iter().map(|a| status_kb(a.proc.pid(), "VmHWM:")).collect();
    let rss: Vec<u64> = agents.iter().map(|a| status_kb(a.proc.pid(), "VmRSS:")).collect();
    let max_hwm = *hwm.iter().max().unwrap();
    let busiest = per_node.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let grew: i64 = rss.iter().zip(&idle).map(|(r, i)| *r as i64 - *i as i64).sum();
    println!(
        "allocations per agent   {:?} (BestFit packs nodes, as Nomad's bin-packing does)",
        per_node.iter().map(|(_, n)| *n).collect::<Vec<_>>()
    );
    println!(
        "agent VmHWM             max {max_hwm} kB ({:.2} MB, the busiest runs {busiest}); mean {} kB",
        max_hwm as f64 / 1024.0,
        hwm.iter().sum::<u64>() / hwm.len() as u64
    );
    println!(
        "agent VmRSS idle -> running: +{grew} kB over all agents for {COUNT} allocations ({:.1} kB per allocation)",
        grew as f64 / f64::from(COUNT)
    );

    // A node dies with its tasks: its allocations are replaced on the others.
    let (vi, _) = per_node.iter().enumerate().max_by_key(|(_, (_, n))| *n).unwrap();
    let victim = agents.remove(vi);
    let vname = victim.name.clone();
    let lost = per_node[vi].1;
    let t1 = Instant::now();
    drop(victim); // kills its tasks, then the agent (SIGKILL)
    wait_for("the dead node's allocations replaced", Duration::from_secs(60), || {
        let r = running(&hub);
        let on_victim = r.iter().filter(|a| a.node.as_str() == vname).count();
        if r.len() == COUNT as usize && on_victim == 0 {
            Ok(())
        } else {
            Err(format!("{} running, {on_victim} on {vname}", r.len()))
        }
    });
    println!(
        "busiest node killed -> its {lost} running elsewhere: {:.2} s (3 s of it the hub's grace for a node that went offline)",
        t1.elapsed().as_secs_f64()
    );
    let _ = hub.cli(&["job", "stop", "bench"]);
    if let Some(max) = std::env::var("RABBLE_BENCH_MAX_HWM_KB").ok().and_then(|s| s.parse::<u64>().ok())
        && max_hwm > max
    {
        println!("OVER BUDGET: agent VmHWM {max_hwm} kB with 20 allocations (limit {max} kB)");
        std::process::exit(1);
    }
}
