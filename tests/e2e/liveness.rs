//! Node liveness: the broker's Last Will on kill -9, a clean goodbye on SIGTERM, and the
//! hub's own heartbeat TTL when an agent hangs.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::{Duration, Instant};

#[test]
fn kill_9_marks_the_node_down_within_the_keepalive_bound() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let keepalive = Duration::from_secs(2);
    let mut a = Agent::start(dir.path(), "victim", hub.mqtt_port, &["--keepalive", "2s"]);
    a.write_service("s.toml", "[[service]]\nname = \"svc\"\n");
    hub.wait_node("victim", NodeStatus::Up, Duration::from_secs(10));
    wait_for(
        "svc",
        Duration::from_secs(10),
        || if hub.instances("svc").len() == 1 { Ok(()) } else { Err("none".into()) },
    );

    let start = Instant::now();
    a.proc.stop("KILL");
    let bound = keepalive * 3 / 2 + Duration::from_secs(1);
    hub.wait_node("victim", NodeStatus::Down, bound + Duration::from_secs(2));
    let took = start.elapsed();
    eprintln!("kill -9 to node down: {took:?} (bound {bound:?})");
    assert!(took <= bound, "node down after {took:?}, over 1.5 x keepalive + 1 s = {bound:?}");
    let svc = hub.services().into_iter().find(|s| s.name == "svc").unwrap();
    assert_eq!(svc.instances[0].status, rabble_shared::Status::Critical, "a down node's instance is not healthy");
}

#[test]
fn sigterm_says_offline_at_once_and_deregisters() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let mut a = Agent::start(dir.path(), "leaver", hub.mqtt_port, &["--keepalive", "30s"]);
    a.write_service("s.toml", "[[service]]\nname = \"svc\"\n[[service.checks]]\nttl = \"1m\"\n");
    wait_for(
        "svc",
        Duration::from_secs(10),
        || if hub.instances("svc").len() == 1 { Ok(()) } else { Err("none".into()) },
    );
    let start = Instant::now();
    a.proc.stop("TERM");
    hub.wait_node("leaver", NodeStatus::Down, Duration::from_secs(3));
    wait_for("svc deregistered", Duration::from_secs(3), || {
        if hub.instances("svc").is_empty() { Ok(()) } else { Err("still registered".into()) }
    });
    eprintln!("SIGTERM to offline and deregistered: {:?}", start.elapsed());
    let node = hub.nodes().into_iter().find(|n| n.id.as_str() == "leaver").unwrap();
    assert_eq!(node.reason, "offline");
}

#[test]
fn a_hung_agent_goes_down_by_heartbeat_ttl_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &["--heartbeat-ttl", "3s"]);
    // A long keepalive, so only the hub's heartbeat TTL can notice the hang.
    let a = Agent::start(dir.path(), "sleepy", hub.mqtt_port, &["--keepalive", "60s"]);
    hub.wait_node("sleepy", NodeStatus::Up, Duration::from_secs(10));
    a.proc.signal("STOP");
    hub.wait_node("sleepy", NodeStatus::Down, Duration::from_secs(8));
    let node = hub.nodes().into_iter().find(|n| n.id.as_str() == "sleepy").unwrap();
    assert_eq!(node.reason, "heartbeat-timeout");
    a.proc.signal("CONT");
    hub.wait_node("sleepy", NodeStatus::Up, Duration::from_secs(8));
}
