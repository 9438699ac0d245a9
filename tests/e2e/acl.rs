//! Topic ACLs over TLS: a node's credentials reach only its own topics (the hub's TLS
//! relay enforces it; rumqttd has none), an observer reads and never writes.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, tool, wait_for};
use std::process::Command;
use std::time::Duration;

#[test]
fn a_nodes_credentials_reach_only_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub_data = d.join("hub-data");
    let pi1 = rabble_tests::node_token(&hub_data, "pi1", &[]);
    let watcher = rabble_tests::node_token(&hub_data, "watcher", &["--observer"]);
    let (hub, tls) = Hub::start_tls(d, &[]);
    let (port, ca) = (tls.port, tls.ca.clone());
    // The node's own agent works as before behind the ACL.
    let a = Agent::start_tls(d, "pi1", &tls, &pi1, &[]);
    a.write_service("web.toml", "[service]\nname = \"web\"\nport = 8080\n");
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    wait_for(
        "web",
        Duration::from_secs(10),
        || if hub.instances("web").len() == 1 { Ok(()) } else { Err("no".into()) },
    );

    let tls_args = |user: &str, pass: &str, id: &str| -> Vec<String> {
        ["-h", "localhost", "-p", &port.to_string(), "--cafile", ca.to_str().unwrap(), "-u", user, "-P", pass, "-i", id]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let publish = |topic: &str| {
        Command::new(tool("mosquitto_pub"))
            .args(tls_args("pi1", &pi1, "pi1-tool"))
            .args(["-q", "1", "-t", topic, "-m", "{\"v\":1}"])
            .output()
            .unwrap()
    };
    // Its own subtree: let through (the hub then judges the payload).
    assert!(publish("rabble/node/pi1/heartbeat").status.success());
    // Another node's topics, or the hub's: the connection is cut, nothing arrives.
    for foreign in ["rabble/node/pi2/facts", "rabble/node/pi1/assignments", "rabble/hub/status"] {
        assert!(!publish(foreign).status.success(), "{foreign} was accepted");
    }
    // Each refusal is logged when the broker cuts the connection, before anything of it
    // could reach the hub: once all three are, nothing of them was let through.
    wait_for("the three refusals in the hub's log", Duration::from_secs(10), || {
        let log = hub.proc.log();
        match ["rabble/node/pi2/facts", "rabble/node/pi1/assignments", "rabble/hub/status"]
            .iter()
            .find(|t| !log.contains(&format!("node pi1: may not publish to \"{t}\"")))
        {
            Some(t) => Err(format!("{t} not refused yet")),
            None => Ok(()),
        }
    });
    assert!(hub.nodes().iter().all(|n| n.id.as_str() != "pi2"), "pi1's token created pi2");
    // Subscribing to everything: cut too.
    let sub = Command::new(tool("mosquitto_sub"))
        .args(tls_args("pi1", &pi1, "pi1-sub"))
        .args(["-t", "rabble/#", "-C", "1", "-W", "3"])
        .output()
        .unwrap();
    assert!(!sub.status.success(), "a node read the whole cluster");
    // An observer reads everything...
    let sub = Command::new(tool("mosquitto_sub"))
        .args(tls_args("watcher", &watcher, "watcher"))
        .args(["-t", "rabble/hub/status", "-C", "1", "-W", "5"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sub.stdout).trim(), "online");
    // ...and writes nothing.
    let out = Command::new(tool("mosquitto_pub"))
        .args(tls_args("watcher", &watcher, "watcher-pub"))
        .args(["-q", "1", "-t", "rabble/node/watcher/facts", "-m", "{}"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an observer published");
    // The node's agent is still up and registered through all this.
    assert_eq!(hub.node_status("pi1"), Some(NodeStatus::Up));
}
