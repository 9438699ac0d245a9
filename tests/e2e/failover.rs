//! An agent that knows every hub (`--hub` repeated): when the one it is on dies it is on
//! the next within about a second, and back on the first when that is the one alive —
//! never waiting out a long backoff while a hub is up. Two real, independent hubs (a hub
//! cluster's fail-over is `hubs.rs`'s), a real agent, SIGKILL.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

#[test]
fn an_agent_moves_to_the_next_hub_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (d1, d2) = (d.join("one"), d.join("two"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let mut hub1 = Hub::start(&d1, &[]);
    let mut hub2 = Hub::start(&d2, &[]);
    let url = |h: &Hub| format!("mqtt://127.0.0.1:{}", h.mqtt_port);
    let agent = Agent::spawn(
        Command::new(bin("rabble-agent")),
        d,
        "pi-a",
        &url(&hub1),
        d.join("pi-a-services"),
        &["--hub", &url(&hub2), "--keepalive", "2s"],
    );
    hub1.wait_node("pi-a", NodeStatus::Up, T);
    assert_eq!(hub2.node_status("pi-a"), None, "on the first hub only");

    hub1.proc.stop("KILL");
    let t = Instant::now();
    hub2.wait_node("pi-a", NodeStatus::Up, T);
    let first = t.elapsed();

    // The first hub back, the second gone: back to the first, as fast.
    hub1.relaunch();
    hub2.proc.stop("KILL");
    let t = Instant::now();
    wait_for("pi-a back on the first hub", T, || match hub1.node_status("pi-a") {
        Some(NodeStatus::Up) if hub1.health().is_ok_and(|h| h.mqtt_connected) => {
            let log = agent.proc.log();
            let on_first = log.lines().rev().find(|l| l.contains("connected to the hub")).unwrap_or("");
            if on_first.contains(&format!(":{}", hub1.mqtt_port)) { Ok(()) } else { Err(on_first.to_owned()) }
        }
        other => Err(format!("{other:?}")),
    });
    let second = t.elapsed();
    println!("fail-over to the next hub: {first:?}; and back: {second:?}");
    assert!(first < Duration::from_secs(3), "took {first:?} to reach the second hub");
    assert!(second < Duration::from_secs(3), "took {second:?} to come back");
}
