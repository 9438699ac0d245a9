//! `rabble alloc logs`: a task's output read from its node over MQTT, on demand.

use rabble_tests::{Agent, Hub, Subscriber, bin, wait_for};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A raw_exec service task that says hello on both streams, then ticks five times a second.
const CHATTY: &str = r#"job "chatty" {
  group "g" {
    task "talk" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo hello-out; echo hello-err >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
      }
      kill_timeout = "1s"
    }
  }
}
"#;

fn alloc_id(hub: &Hub) -> String {
    let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/chatty").unwrap();
    j.allocations[0].id.to_string()
}

/// A hub and a worker `pi1` running the chatty job.
fn chatty(d: &std::path::Path) -> (Hub, Agent) {
    let hub = Hub::start(d, &[]);
    let a = Agent::worker(d, &hub, "pi1");
    hub.run_job(&d.join("chatty.nomad.hcl"), CHATTY);
    wait_for("the job to run", Duration::from_secs(20), || {
        if hub.running_on("chatty").len() == 1 { Ok(()) } else { Err("not yet".into()) }
    });
    (hub, a)
}

#[test]
fn alloc_logs_reads_and_follows_a_tasks_output_and_stops_when_the_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (hub, _a) = chatty(d);
    let id = alloc_id(&hub);
    let short = &id[..8]; // a unique prefix works, as in Nomad

    // stdout, stderr, and the end only.
    let out = wait_for("stdout with ticks", Duration::from_secs(10), || {
        let (ok, out, err) = hub.cli(&["alloc", "logs", short]);
        if ok && out.contains("hello-out") && out.contains("tick 2") { Ok(out) } else { Err(format!("{out}{err}")) }
    });
    assert!(!out.contains("hello-err"), "{out}");
    let (ok, err_out, e) = hub.cli(&["alloc", "logs", "-stderr", short, "talk"]);
    assert!(ok && err_out == "hello-err\n", "{err_out}{e}");
    let (ok, tail, e) = hub.cli(&["alloc", "logs", "-tail", "-n", "1", short]);
    assert!(ok && tail.lines().count() == 1 && tail.starts_with("tick "), "{tail:?}{e}");

    // Mistakes are explained, not hung on.
    let (ok, _, e) = hub.cli(&["alloc", "logs", "-task", "nope", short]);
    assert!(!ok && e.contains("no task \"nope\"") && e.contains("talk"), "{e}");
    let (ok, _, e) = hub.cli(&["alloc", "logs", "ffffffffffff"]);
    assert!(!ok && e.contains("no allocation"), "{e}");

    // -f: new output keeps coming; when the reader goes, the node stops sending.
    let sub = Subscriber::start(d, hub.mqtt_port);
    let chunks = || sub.lines().iter().filter(|l| l.starts_with("rabble/node/pi1/logs/")).count();
    let mut follow = Command::new(bin("rabble"))
        .args(["alloc", "logs", "-f", "-tail", "-n", "1", short])
        .env("RABBLE_ADDR", &hub.http)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first_tick = |l: &str| l.strip_prefix("tick ").and_then(|n| n.parse::<u32>().ok());
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(n) = first_tick(&line) {
            seen.push(n);
        }
        // Eight seconds of ticks: longer than a renewal period, so the lease held.
        if seen.len() > 1 && seen.last().unwrap() - seen[0] >= 40 {
            break;
        }
    }
    assert!(
        seen.len() > 1 && seen.last().unwrap() - seen[0] >= 40,
        "-f did not keep streaming new output (ticks seen: {seen:?})"
    );
    follow.kill().unwrap();
    let _ = follow.wait();
    drop(lines);
    // Chunks stop within a moment of the reader going (cancel), not at lease end.
    std::thread::sleep(Duration::from_secs(2));
    let after_cancel = chunks();
    assert!(after_cancel > 10, "mosquitto_sub saw {after_cancel} chunks of the session");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(chunks(), after_cancel, "the node kept streaming after the reader went");
}

#[test]
fn a_forged_logs_request_streams_nothing_and_is_counted() {
    use rabble_shared::logs::{LogsRequest, SignedRequest};
    use rabble_shared::{NodeId, msg};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (hub, _a) = chatty(d);
    let req = LogsRequest {
        node: NodeId::new("pi1").unwrap(),
        session: "abcd".into(),
        alloc: rabble_shared::AllocId::new(alloc_id(&hub)).unwrap(),
        task: "talk".into(),
        stream: Default::default(),
        follow: false,
        lines: None,
        bytes: None,
        issued_ms: rabble_shared::support::clock::now_ms(),
        cancel: false,
    };
    let body = serde_json::to_string(&req).unwrap();
    let other = rabble_hub::dispatch::sign::SigningKey::load_or_create(&d.join("attacker")).unwrap();
    let forged = msg::encode(&SignedRequest { sig: other.sign(body.as_bytes()), body });
    let sub = Subscriber::start(d, hub.mqtt_port);
    let refused = || {
        hub.nodes()
            .into_iter()
            .find(|n| n.id.as_str() == "pi1")
            .and_then(|n| n.heartbeat)
            .map_or(0, |h| h.assignments_refused)
    };
    let before = refused();
    rabble_tests::mosquitto_pub(hub.mqtt_port, "rabble/node/pi1/logs", &forged).unwrap();
    wait_for("the refusal counted", Duration::from_secs(10), || {
        let n = refused();
        if n > before { Ok(()) } else { Err(format!("{n}")) }
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent: Vec<String> = sub.lines().into_iter().filter(|l| l.starts_with("rabble/node/pi1/logs/")).collect();
    assert!(sent.is_empty(), "a forged request got output: {sent:?}");
}

/// A hub cluster: only the leader talks to nodes, so `alloc logs` asked of a follower goes
/// through the leader (over the cluster's TLS) — read, followed, and stopped at the node
/// when the reader goes, as on the leader itself.
#[test]
fn alloc_logs_asked_of_a_follower_come_through_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hubs = rabble_tests::hubs::Hubs::start(d, 3, &[]);
    let leader = hubs.wait_leader(Duration::from_secs(20));
    let follower = &hubs.hubs[(leader + 1) % 3];
    let key = hubs.hubs[leader].key();
    let alloc = d.join("pi1-alloc").display().to_string();
    let brokers = hubs.brokers();
    let mut extra = vec!["--hub-key", key.as_str(), "--alloc-dir", alloc.as_str(), "--no-docker"];
    for b in &brokers[1..] {
        extra.extend(["--hub", b.as_str()]);
    }
    let _a = Agent::spawn(Command::new(bin("rabble-agent")), d, "pi1", &brokers[0], d.join("svc"), &extra);
    follower.wait_node("pi1", rabble_shared::api::NodeStatus::Up, Duration::from_secs(20));
    follower.run_job(&d.join("chatty.nomad.hcl"), CHATTY);
    wait_for("the job to run", Duration::from_secs(20), || {
        if follower.running_on("chatty").len() == 1 { Ok(()) } else { Err("not yet".into()) }
    });
    let id = alloc_id(follower);

    let out = wait_for("stdout through a follower", Duration::from_secs(10), || {
        let (ok, out, err) = follower.cli(&["alloc", "logs", &id[..8]]);
        if ok && out.contains("hello-out") && out.contains("tick 2") { Ok(out) } else { Err(format!("{out}{err}")) }
    });
    assert!(!out.contains("rabble:"), "{out}");
    let (ok, err_out, e) = follower.cli(&["alloc", "logs", "-stderr", &id[..8]]);
    assert!(ok && err_out == "hello-err\n", "{err_out}{e}");

    // Followed through the follower; the reader goes, the node stops sending.
    let sub = Subscriber::start(d, hubs.hubs[leader].mqtt_port);
    let chunks = || sub.lines().iter().filter(|l| l.starts_with("rabble/node/pi1/logs/")).count();
    let mut follow = Command::new(bin("rabble"))
        .args(["alloc", "logs", "-f", "-tail", "-n", "1", &id[..8]])
        .env("RABBLE_ADDR", &follower.http)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut ticks = 0;
    let start = Instant::now();
    while ticks < 10 && start.elapsed() < Duration::from_secs(15) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.starts_with("tick ") {
            ticks += 1;
        }
    }
    assert_eq!(ticks, 10, "-f through a follower kept streaming");
    follow.kill().unwrap();
    let _ = follow.wait();
    drop(lines);
    std::thread::sleep(Duration::from_secs(2));
    let after = chunks();
    assert!(after > 5, "mosquitto_sub saw {after} chunks of the session");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(chunks(), after, "the node kept streaming after the reader went");
}

/// A task that has ended still shows why: its node keeps the tails of ended allocations
/// (in memory, bounded), so `rabble alloc logs` on a stopped or failed allocation answers.
#[test]
fn an_ended_allocations_output_is_still_there_to_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (hub, _a) = chatty(d);
    let id = alloc_id(&hub);
    wait_for("some output", Duration::from_secs(10), || {
        let (ok, out, err) = hub.cli(&["alloc", "logs", &id[..8]]);
        if ok && out.contains("tick 2") { Ok(()) } else { Err(format!("{out}{err}")) }
    });
    let (ok, _, err) = hub.cli(&["job", "stop", "chatty"]);
    assert!(ok, "{err}");
    wait_for("the allocation to end", Duration::from_secs(20), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/chatty")?;
        let a = &j.allocations[0];
        if a.client_status.is_terminal() { Ok(()) } else { Err(format!("{:?}", a.client_status)) }
    });
    // Well after its node let go of it.
    std::thread::sleep(Duration::from_secs(2));
    let (ok, out, err) = hub.cli(&["alloc", "logs", &id[..8]]);
    assert!(ok && out.contains("hello-out") && out.contains("tick 2"), "{out}{err}");
    let (ok, err_out, e) = hub.cli(&["alloc", "logs", "-stderr", &id[..8]]);
    assert!(ok && err_out == "hello-err\n", "{err_out}{e}");
    // Following an ended task ends at once with what it wrote.
    let t = Instant::now();
    let (ok, out, err) = hub.cli(&["alloc", "logs", "-f", &id[..8]]);
    assert!(ok && out.contains("hello-out") && t.elapsed() < Duration::from_secs(5), "{out}{err}");
}
