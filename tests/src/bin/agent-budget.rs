//! The agent's budgets, measured on the shipped builds: static size of the aarch64 and
//! x86_64 musl `agent-release` binaries and of the armv7 (static glibc) one; resident memory high-water mark (VmHWM) of the
//! x86_64 musl agent running 20 services and 20 checks for a while; and bytes it writes
//! to disk meanwhile (`write_bytes` in /proc/<pid>/io: what reached the block layer);
//! and VmHWM of an agent serving an idle HTTP lane; and VmHWM of an agent answering DNS
//! with a 1,000-service zone (registered on the hub through Consul's catalog API).
//! Prints every figure; exits 1 if one is over its limit. Run it with
//! `bash tests/budget-agent.sh [seconds]`.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::process::Command;
use std::time::Duration;

/// 3.5 MB with the lane proxy built in (3 MiB before it).
const SIZE_LIMIT: u64 = 3_500_000;
/// 32-bit Pi OS: glibc linked statically (rustup has no armv7 musl here) costs ~0.2 MB more.
const ARMV7_SIZE_LIMIT: u64 = 3_800_000;
const HWM_LIMIT_KB: u64 = 6 * 1024;
/// An agent serving an idle lane (its proxy started, a table received).
const LANE_HWM_LIMIT_KB: u64 = 5 * 1024;
const SERVICES: usize = 20;
/// An agent answering DNS for a zone of [`ZONE_SERVICES`] services (issue: ≤ 5 MB).
const DNS_HWM_LIMIT_KB: u64 = 5 * 1024;
const ZONE_SERVICES: usize = 1000;

/// `Key:   123 kB` from /proc/<pid>/status.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} not in /proc/{pid}/status"))
}

/// (write_bytes, wchar) from /proc/<pid>/io: disk writes, and every write(2) incl. sockets.
fn io(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap();
    (get("write_bytes:"), get("wchar:"))
}

fn main() {
    let secs: u64 = std::env::args().nth(1).map_or(60, |s| s.parse().expect("seconds"));
    let mut over = Vec::new();

    println!("== agent binary size (agent-release: opt-level z, LTO, 1 CGU, panic=abort, strip) ==");
    for target in ["aarch64-unknown-linux-musl", "x86_64-unknown-linux-musl", "armv7-unknown-linux-gnueabihf"] {
        let p = release_agent(target);
        let size = std::fs::metadata(&p).unwrap().len();
        let file = Command::new("file").arg("-b").arg(&p).output().map(|o| o.stdout).unwrap_or_default();
        let file = String::from_utf8_lossy(&file);
        let statik = file.contains("statically linked") || file.contains("static-pie linked");
        println!("{target:<28} {:>9} bytes  {:.2} MB  {}", size, size as f64 / 1e6, file.trim());
        if target.starts_with("aarch64") && size > SIZE_LIMIT {
            over.push(format!("aarch64 agent is {size} bytes (limit {SIZE_LIMIT})"));
        }
        if target.starts_with("armv7") && size > ARMV7_SIZE_LIMIT {
            over.push(format!("armv7 agent is {size} bytes (limit {ARMV7_SIZE_LIMIT})"));
        }
        if !statik && !file.is_empty() {
            over.push(format!("{target} agent is not statically linked: {file}"));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let services = d.join("services");
    std::fs::create_dir_all(&services).unwrap();
    // 20 services, 20 checks every second: 10 HTTP (the hub's API), 10 TCP (its broker).
    for i in 0..SERVICES {
        let check = if i % 2 == 0 {
            format!("http = \"{}/api/v1/health\"", hub.http)
        } else {
            format!("tcp = \"127.0.0.1:{}\"", hub.mqtt_port)
        };
        std::fs::write(
            services.join(format!("svc{i}.toml")),
            format!(
                "[service]\nname = \"svc{i}\"\nport = {}\ntags = [\"budget\"]\n[[service.checks]]\nid = \"c{i}\"\n{check}\n\
                 interval = \"1s\"\ntimeout = \"1s\"\n",
                9000 + i
            ),
        )
        .unwrap();
    }
    let agent = Agent::spawn(
        Command::new(release_agent("x86_64-unknown-linux-musl")),
        d,
        "budget",
        &format!("mqtt://127.0.0.1:{}", hub.mqtt_port),
        services,
        &[],
    );
    let pid = agent.proc.pid();
    wait_for("20 passing checks", Duration::from_secs(30), || {
        let passing = hub
            .services()
            .iter()
            .flat_map(|s| &s.instances)
            .filter(|i| i.status == rabble_shared::Status::Passing)
            .count();
        if passing == SERVICES { Ok(()) } else { Err(format!("{passing} passing")) }
    });
    let (disk0, wchar0) = io(pid);
    let rss0 = status_kb(pid, "VmRSS:");
    println!(
        "\n== x86_64 musl agent, {SERVICES} services + {SERVICES} checks (1 s interval), {secs} s steady state =="
    );
    std::thread::sleep(Duration::from_secs(secs));
    let (disk1, wchar1) = io(pid);
    let hwm = status_kb(pid, "VmHWM:");
    let rss1 = status_kb(pid, "VmRSS:");
    let passing =
        hub.services().iter().flat_map(|s| &s.instances).filter(|i| i.status == rabble_shared::Status::Passing).count();
    println!(
        "VmHWM (peak resident)      {hwm:>6} kB  ({:.2} MB; limit {} MB)",
        hwm as f64 / 1024.0,
        HWM_LIMIT_KB / 1024
    );
    println!("VmRSS at start / end       {rss0:>6} kB / {rss1} kB");
    println!("disk writes (write_bytes)  {:>6} bytes over {secs} s (since start: {disk1})", disk1 - disk0);
    println!("all write(2) (wchar)       {:>6} bytes over {secs} s (MQTT, logs: not disk)", wchar1 - wchar0);
    println!("checks passing at the end  {passing}/{SERVICES}");
    if hwm > HWM_LIMIT_KB {
        over.push(format!("VmHWM {hwm} kB (limit {HWM_LIMIT_KB} kB)"));
    }
    if disk1 != disk0 {
        over.push(format!("the agent wrote {} bytes to disk in steady state (budget: 0)", disk1 - disk0));
    }
    if passing != SERVICES {
        over.push(format!("only {passing}/{SERVICES} checks passing at the end"));
    }
    drop(agent);
    drop(hub);

    // An idle lane: the proxy bound, the hub's table received, no traffic.
    std::fs::create_dir_all(d.join("lane")).unwrap();
    let hub = Hub::start(&d.join("lane"), &[]);
    let lane_port = free_port();
    let lane = Agent::spawn(
        Command::new(release_agent("x86_64-unknown-linux-musl")),
        &d.join("lane"),
        "lane",
        &format!("mqtt://127.0.0.1:{}", hub.mqtt_port),
        d.join("lane-services"),
        &["--lane", &format!("routing=127.0.0.1:{lane_port}")],
    );
    let lane_pid = lane.proc.pid();
    wait_for("the lane's table", Duration::from_secs(20), || {
        if lane.proc.log().contains("routing table updated") { Ok(()) } else { Err("not yet".into()) }
    });
    std::thread::sleep(Duration::from_secs((secs / 6).max(5)));
    let lane_hwm = status_kb(lane_pid, "VmHWM:");
    println!("\n== x86_64 musl agent serving an idle routing lane ==");
    println!(
        "VmHWM (peak resident)      {lane_hwm:>6} kB  ({:.2} MB; limit {} MB)",
        lane_hwm as f64 / 1024.0,
        LANE_HWM_LIMIT_KB / 1024
    );
    if lane_hwm > LANE_HWM_LIMIT_KB {
        over.push(format!("VmHWM with an idle lane {lane_hwm} kB (limit {LANE_HWM_LIMIT_KB} kB)"));
    }
    drop(lane);
    drop(hub);

    // DNS on the node: 1,000 services in the zone (3 instances each), answered on loopback.
    std::fs::create_dir_all(d.join("dns")).unwrap();
    let hub = Hub::start(&d.join("dns"), &[]);
    let agent_http = ureq::Agent::new_with_defaults();
    for i in 0..ZONE_SERVICES {
        for j in 0..3 {
            let body = format!(
                r#"{{"Node": "ext{j}", "Address": "10.9.{j}.1", "Service": {{"ID": "s{i}", "Service": "s{i}", "Address": "10.{}.{}.{}", "Port": 80}}}}"#,
                i / 250,
                i % 250,
                j + 1
            );
            agent_http.put(&format!("{}/v1/catalog/register", hub.http)).send(body.as_str()).expect("register");
        }
    }
    let dns_port = free_port();
    let node = Agent::spawn(
        Command::new(release_agent("x86_64-unknown-linux-musl")),
        &d.join("dns"),
        "dns",
        &format!("mqtt://127.0.0.1:{}", hub.mqtt_port),
        d.join("dns-services"),
        &["--dns-listen", &format!("127.0.0.1:{dns_port}")],
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    wait_for("the whole zone on the node", Duration::from_secs(60), || {
        let last = format!("s{}.service.rabble", ZONE_SERVICES - 1);
        match ask_a(&udp, dns_port, &last, Duration::from_millis(500)) {
            Some(3) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // Every name, not only the last: each must answer with its three instances.
    let t = std::time::Instant::now();
    let (mut answered, mut wrong) = (0u64, Vec::new());
    for i in 0..ZONE_SERVICES {
        match ask_a(&udp, dns_port, &format!("s{i}.service.rabble"), Duration::from_millis(500)) {
            Some(3) => answered += 1,
            other => wrong.push(format!("s{i}: {other:?}")),
        }
    }
    let took = t.elapsed();
    let dns_hwm = status_kb(node.proc.pid(), "VmHWM:");
    println!(
        "
== x86_64 musl agent answering DNS, a zone of {ZONE_SERVICES} services x 3 instances =="
    );
    println!(
        "VmHWM (peak resident)      {dns_hwm:>6} kB  ({:.2} MB; limit {} MB); {answered}/{ZONE_SERVICES} names answered in {took:?}, one at a time",
        dns_hwm as f64 / 1024.0,
        DNS_HWM_LIMIT_KB / 1024
    );
    if !wrong.is_empty() {
        over.push(format!(
            "{} names answered wrongly by the node, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(3)]
        ));
    }
    if dns_hwm > DNS_HWM_LIMIT_KB {
        over.push(format!("VmHWM answering DNS {dns_hwm} kB (limit {DNS_HWM_LIMIT_KB} kB)"));
    }
    drop(node);
    drop(hub);
    if over.is_empty() {
        println!("\nagent budgets: OK");
    } else {
        for o in &over {
            println!("OVER BUDGET: {o}");
        }
        std::process::exit(1);
    }
}
