//! Forgetting nodes: a decommissioned Pi no longer stays "down" forever. `rabble node
//! forget` removes a down node with its services (an up node is refused), the hub clears
//! the retained topics its agent left so a hub restart does not bring it back, its agent
//! started again joins again; and a node down longer than `node_gc_threshold` is
//! forgotten on its own.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn has(hub: &Hub, node: &str) -> bool {
    hub.nodes().iter().any(|n| n.id.as_str() == node)
}

#[test]
fn a_down_node_is_forgotten_by_hand_or_after_the_threshold_and_stays_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &["--node-gc-threshold", "6s"]);
    let mut pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    let mut pi2 = Agent::start(d, "pi2", hub.mqtt_port, &[]);
    wait_for("pi1's service", T, || if hub.instances("web").len() == 1 { Ok(()) } else { Err("not yet".into()) });
    hub.wait_node("pi2", NodeStatus::Up, T);

    // Nomad's `node status <node>`: status, eligibility, drain, its services; `rabble nodes` the columns.
    let (ok, status, err) = hub.cli(&["node", "status", "pi1"]);
    assert!(
        ok && status.contains("Eligibility  = eligible") && status.contains("Drain        = false"),
        "{status}{err}"
    );
    assert!(status.contains("Services\nSERVICE") && status.contains("web"), "{status}");
    let (_, nodes, _) = hub.cli(&["nodes"]);
    assert!(nodes.starts_with("NODE  STATUS  ELIGIBILITY  DRAIN") && nodes.contains(" eligible "), "{nodes}");
    // An up node is refused: its agent would join again at once.
    let (ok, _, err) = hub.cli(&["node", "forget", "pi1"]);
    assert!(!ok && err.contains("is up"), "{err}");

    // Down, then forgotten by hand: gone with its service.
    pi1.proc.stop("KILL");
    hub.wait_node("pi1", NodeStatus::Down, T);
    let (ok, out, err) = hub.cli(&["node", "forget", "pi1"]);
    assert!(ok && out.contains("forgotten"), "{out}{err}");
    assert!(!has(&hub, "pi1") && hub.instances("web").is_empty());
    let (ok, _, err) = hub.cli(&["node", "forget", "pi1"]);
    assert!(!ok && err.contains("no node"), "{err}");

    // A hub restart does not bring it back from the broker's retained messages (cleared).
    std::thread::sleep(Duration::from_millis(500));
    hub.restart("KILL");
    hub.wait_node("pi2", NodeStatus::Up, T);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!has(&hub, "pi1"), "the forgotten node came back: {:?}", hub.nodes());
    assert!(hub.instances("web").is_empty());

    // Down longer than node_gc_threshold: forgotten on its own.
    pi2.proc.stop("KILL");
    hub.wait_node("pi2", NodeStatus::Down, T);
    let t = Instant::now();
    wait_for(
        "pi2 forgotten after the threshold",
        T,
        || if has(&hub, "pi2") { Err("still there".into()) } else { Ok(()) },
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(4), "forgotten {took:?} after going down, before the 6 s threshold");
    assert!(hub.proc.log().contains("forgetting a node down longer than node_gc_threshold"));

    // The forgotten node's agent, started again, joins again.
    let _pi1 = Agent::start_with(d, "pi1", hub.mqtt_port, pi1.services_dir.clone(), &[]);
    hub.wait_node("pi1", NodeStatus::Up, T);
    wait_for("its service again", T, || if hub.instances("web").len() == 1 { Ok(()) } else { Err("not yet".into()) });
    println!("node_gc_threshold 6s: pi2 forgotten {took:?} after it was seen down");
}
