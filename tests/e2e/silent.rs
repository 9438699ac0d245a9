//! A node that vanishes without a word — its link cut, no TCP close, no Will until a
//! keepalive runs out — measured for real: an agent in a network namespace made here,
//! its veth taken down. Prints how long until the hub saw it down and until its
//! allocation ran on the other node (BENCHMARKS.md).

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, bin, kill_processes_under, wait_for};
use std::process::Command;
use std::time::{Duration, Instant};

/// A network namespace with a veth pair, removed on drop. Addresses are this test's
/// own (10.250.N.0/30, on this machine only).
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    fn new() -> Netns {
        let n = std::process::id() % 200 + 20;
        let (name, host_if, ns_if) = (format!("rbl{n}"), format!("rbl{n}h"), format!("rbl{n}n"));
        let (host_ip, ns_ip) = (format!("10.250.{n}.1"), format!("10.250.{n}.2"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Netns { name, host_if, host_ip }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

#[test]
fn a_node_cut_off_silently_is_down_within_seconds_and_its_work_moves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ns = Netns::new();
    let hub = Hub::start_on(d, &ns.host_ip, &[]);
    let key = hub.key();
    let alloc_ns = d.join("cut-alloc");
    let mut inside = Command::new("ip");
    inside.args(["netns", "exec", &ns.name]).arg(bin("rabble-agent"));
    let extra = ["--hub-key", key.as_str(), "--alloc-dir", alloc_ns.to_str().unwrap(), "--no-docker"];
    // Default heartbeat and keepalive, so the figure is the default's.
    let mut cut =
        Agent::spawn(inside, d, "cut", &format!("mqtt://{}:{}", ns.host_ip, hub.mqtt_port), d.join("cut-svc"), &extra);
    // (The harness passes --heartbeat-interval 1s, the default; the keepalive is the default 3 s.)
    hub.wait_node("cut", NodeStatus::Up, Duration::from_secs(15));
    let job = format!(
        "job \"web\" {{\n group \"web\" {{\n network {{\n port \"http\" {{}}\n }}\n task \"server\" {{\n driver = \"raw_exec\"\n config {{\n command = \"{}\"\n }}\n }}\n }}\n}}\n",
        bin("tiny-http").display()
    );
    hub.run_job(&d.join("web.nomad.hcl"), &job);
    wait_for("the job to run inside the namespace", Duration::from_secs(20), || {
        if hub.running_on("web") == ["cut"] { Ok(()) } else { Err(format!("{:?}", hub.running_on("web"))) }
    });
    // The other node joins, on the hub's own side.
    let alloc_out = d.join("out-alloc");
    let hub_url = format!("mqtt://{}:{}", ns.host_ip, hub.mqtt_port);
    let out_extra = ["--hub-key", key.as_str(), "--alloc-dir", alloc_out.to_str().unwrap(), "--no-docker"];
    let _outside =
        Agent::spawn(Command::new(bin("rabble-agent")), d, "outside", &hub_url, d.join("out-svc"), &out_extra);
    hub.wait_node("outside", NodeStatus::Up, Duration::from_secs(15));

    // Cut: the link goes down. No FIN, no RST: the hub only stops hearing heartbeats.
    let t0 = Instant::now();
    ip(&["link", "set", &ns.host_if, "down"]);
    hub.wait_node("cut", NodeStatus::Down, Duration::from_secs(15));
    let down = t0.elapsed();
    wait_for("the allocation to run outside", Duration::from_secs(20), || {
        if hub.running_on("web") == ["outside"] { Ok(()) } else { Err(format!("{:?}", hub.running_on("web"))) }
    });
    let moved = t0.elapsed();
    println!(
        "BENCH silent cut: node down after {:.1} s, allocation running elsewhere after {:.1} s",
        down.as_secs_f64(),
        moved.as_secs_f64()
    );
    let node = hub.nodes().into_iter().find(|n| n.id.as_str() == "cut").unwrap();
    assert_eq!(node.reason, "heartbeat-timeout", "seen by the hub's heartbeat TTL, not a Will");
    cut.alloc_dir = Some(alloc_ns.clone());
    kill_processes_under(&alloc_ns);
}
