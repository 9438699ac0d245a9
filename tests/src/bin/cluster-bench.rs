//! What replication costs and how fast a cluster takes over, on the release hub: KV commits
//! (one writer, then 16) on one hub, on a cluster of three through its leader and through
//! a follower (forwarded); then the leader killed `RABBLE_BENCH_KILLS` times (default 3):
//! writes accepted again, a leader again. Placements through the writer: one job of 1,000
//! allocations on three agents, submitted → every allocation committed, one hub vs three.
//! And each member's peak memory, a witness's too.
//! Prints figures (BENCHMARKS.md); fails past generous limits
//! (`RABBLE_BENCH_MAX_FAILOVER_MS`, default 10,000).
//! Usage: bash tests/bench-cluster.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::hubs::Hubs;
use rabble_tests::*;
use std::time::{Duration, Instant};

fn put(http: &str, key: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(3))).build().into();
    let mut r = agent.put(&format!("{http}/v1/kv/{key}")).send("value").map_err(|e| e.to_string())?;
    let body = r.body_mut().read_to_string().unwrap_or_default();
    if body == "true" { Ok(t.elapsed()) } else { Err(body) }
}

fn ms(mut v: Vec<Duration>, q: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

const PLACEMENTS: usize = 1_000;

/// One job of `PLACEMENTS` allocations on three agents that know `brokers`, submitted
/// through `submit`: the time until every allocation is committed (as `submit` sees it).
/// The agents are frozen (SIGSTOP) once up, so what is timed is the scheduler and the
/// writer (and replication), not 1,000 processes starting.
fn placements(label: &str, d: &std::path::Path, submit: &Hub, brokers: &[String], key: &str) -> f64 {
    let agents: Vec<Agent> = (0..3)
        .map(|i| {
            let name = format!("p{i}");
            let alloc = d.join(format!("{name}-alloc")).display().to_string();
            let mut args = vec!["--hub-key", key, "--alloc-dir", alloc.as_str(), "--no-docker"];
            for b in &brokers[1..] {
                args.extend(["--hub", b.as_str()]);
            }
            let cmd = std::process::Command::new(bin("rabble-agent"));
            Agent::spawn(cmd, d, &name, &brokers[0], d.join(format!("{name}-svc")), &args)
        })
        .collect();
    for a in &agents {
        submit.wait_node(&a.name, rabble_shared::api::NodeStatus::Up, Duration::from_secs(20));
        // Frozen only once the hub can place on it: raw_exec in its facts (they follow "up").
        submit.wait_driver(&a.name, "raw_exec", Duration::from_secs(20));
        a.proc.signal("STOP");
    }
    let job = format!(
        "job \"place\" {{\n group \"g\" {{\n count = {PLACEMENTS}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{\n command = \"/bin/sleep\"\n args = [\"600\"]\n }}\n resources {{\n cpu = 5\n memory = 5\n }}\n }}\n }}\n}}\n"
    );
    let t = Instant::now();
    submit.run_job(&d.join("place.nomad.hcl"), &job);
    wait_for("every allocation placed", Duration::from_secs(30), || {
        let j: rabble_shared::api::JobView = submit.get("/api/v1/jobs/place")?;
        if j.allocations.len() == PLACEMENTS { Ok(()) } else { Err(format!("{} placed", j.allocations.len())) }
    });
    let took = t.elapsed();
    let rate = PLACEMENTS as f64 / took.as_secs_f64();
    println!(
        "{label:<28} {PLACEMENTS} placements committed {:.0} ms after the job was submitted: {rate:>6.0} placements/s",
        took.as_secs_f64() * 1000.0
    );
    drop(agents);
    rate
}

/// One writer, then 16 at once; prints and returns commits/s of the first.
fn writes(label: &str, http: &str) -> f64 {
    let key: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let n = 1000;
    let t = Instant::now();
    let lat: Vec<Duration> = (0..n).map(|i| put(http, &format!("{key}/seq/{i}")).unwrap()).collect();
    let one = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{label:<28} one writer: {one:>6.0} commits/s, p50 {:.2} ms, p99 {:.2} ms",
        ms(lat.clone(), 0.5),
        ms(lat, 0.99)
    );
    let (writers, per) = (16, 125);
    let t = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (http, key) = (http.to_owned(), key.clone());
            std::thread::spawn(move || {
                (0..per).map(|i| put(&http, &format!("{key}/par/{w}/{i}")).unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let rate = (writers * per) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{label:<28} 16 writers: {rate:>6.0} puts/s,    p50 {:.2} ms, p99 {:.2} ms",
        ms(lat.clone(), 0.5),
        ms(lat, 0.99)
    );
    one
}

fn main() {
    let max_failover = Duration::from_millis(
        std::env::var("RABBLE_BENCH_MAX_FAILOVER_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
    );
    let kills: usize = std::env::var("RABBLE_BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    println!("== the hub cluster on the release hub (three processes on loopback, this machine's disk) ==");
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let d = dir.path().join("single");
        std::fs::create_dir_all(&d).unwrap();
        let hub = Hub::start(&d, &[]);
        let rate = writes("one hub", &hub.http);
        println!("one hub: peak RSS {} kB", hwm_kb(hub.proc.pid()));
        placements("one hub", &d, &hub, &[format!("mqtt://127.0.0.1:{}", hub.mqtt_port)], &hub.key());
        rate
    };

    let d = dir.path().join("three");
    std::fs::create_dir_all(&d).unwrap();
    let mut hubs = Hubs::start(&d, 3, &[]);
    let leader = hubs.wait_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let three = writes("3 hubs, at the leader", &hubs.hubs[leader].http.clone());
    writes("3 hubs, through a follower", &hubs.hubs[follower].http.clone());
    println!("replication cost (one writer): {:.0} % fewer commits/s than one hub", (1.0 - three / one) * 100.0);
    let key = hubs.hubs[leader].key();
    placements("3 hubs, through a follower", &d, &hubs.hubs[follower], &hubs.brokers(), &key);
    for (i, h) in hubs.hubs.iter().enumerate() {
        let role = if i == leader { "leader" } else { "follower" };
        println!("3 hubs: {role} peak RSS {} kB", hwm_kb(h.proc.pid()));
    }

    let mut again = Vec::new();
    for k in 0..kills {
        let leader = hubs.wait_leader(Duration::from_secs(20));
        let survivor = (leader + 1) % 3;
        let http = hubs.hubs[survivor].http.clone();
        hubs.hubs[leader].proc.stop("KILL");
        let t = Instant::now();
        while put(&http, &format!("after/{k}")).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "no write accepted 30 s after the kill");
            std::thread::sleep(Duration::from_millis(20));
        }
        let w = t.elapsed();
        hubs.wait_leader(Duration::from_secs(20));
        println!("kill -9 of the leader #{}: writes accepted again after {:.2} s", k + 1, w.as_secs_f64());
        again.push(w);
        hubs.relaunch(leader);
        hubs.wait_formed(3, Duration::from_secs(30));
    }
    if !again.is_empty() {
        let worst = again.iter().max().unwrap();
        println!(
            "fail-over: writes again p50 {:.2} s, max {:.2} s over {kills} kills",
            ms(again.clone(), 0.5) / 1000.0,
            worst.as_secs_f64()
        );
        assert!(*worst <= max_failover, "a fail-over took {worst:?} (budget {max_failover:?})");
    }
    drop(hubs);

    let d = dir.path().join("witness");
    std::fs::create_dir_all(&d).unwrap();
    let hubs = Hubs::start_with(&d, 3, true, &[]);
    let leader = hubs.wait_leader(Duration::from_secs(20));
    writes("2 hubs + a witness", &hubs.hubs[leader].http.clone());
    println!("witness: peak RSS {} kB", hwm_kb(hubs.hubs[2].proc.pid()));
    if std::env::var_os("RABBLE_BENCH_SMAPS").is_some() {
        let pid = hubs.hubs[2].proc.pid();
        println!("{}", std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap());
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines().filter(|l| l.starts_with("Rss") || l.starts_with("Threads")).for_each(|l| println!("{l}"));
    }
}
