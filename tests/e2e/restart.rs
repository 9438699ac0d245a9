//! Restarting the hub: the catalog is served at once from redb, agents resync, and
//! nothing is duplicated or left behind.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn hub_restart_keeps_the_catalog_and_agents_resync() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let a = Agent::start(d, "a", hub.mqtt_port, &[]);
    let b = Agent::start(d, "b", hub.mqtt_port, &[]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    a.write_service("gone.toml", "[[service]]\nname = \"gone\"\n");
    b.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    wait_for("three instances", T, || {
        let n = hub.instances("web").len() + hub.instances("gone").len();
        if n == 3 { Ok(()) } else { Err(format!("{n}")) }
    });
    let before = hub.instances("web");

    // kill -9: no goodbye, only what redb made durable survives.
    hub.proc.stop("KILL");
    // While the hub (and its embedded broker) is down, node a reboots with one service
    // file fewer (its deregistration can never be sent), and b is frozen, so what the
    // new hub serves can only come from redb.
    let mut a = a;
    a.proc.stop("KILL");
    std::fs::remove_file(a.services_dir.join("gone.toml")).unwrap();
    b.proc.signal("STOP");
    hub.relaunch();
    assert_eq!(hub.instances("web"), before, "catalog intact right after restart");
    assert_eq!(hub.instances("gone"), ["a/gone"], "served from redb, not yet reconciled");
    assert_eq!(hub.nodes().len(), 2);

    // a comes back knowing nothing of "gone": only its manifest can remove the ghost.
    let _a = Agent::start_with(d, "a", hub.mqtt_port, a.services_dir.clone(), &[]);
    b.proc.signal("CONT");
    wait_for("the ghost to be removed", T, || {
        if hub.instances("gone").is_empty() { Ok(()) } else { Err("ghost still there".into()) }
    });
    hub.wait_node("a", NodeStatus::Up, T);
    hub.wait_node("b", NodeStatus::Up, T);
    assert_eq!(hub.instances("web"), before, "no duplicates after resync");
    let nodes = hub.nodes();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n.last_seen_ago_ms.is_some_and(|ms| ms < 5_000)), "{nodes:?}");

    // A clean restart (SIGTERM) too.
    hub.restart("TERM");
    assert_eq!(hub.instances("web"), before);
    wait_for("agents to resync after a clean restart", T, || {
        let h = hub.health()?;
        if h.nodes_up == 2 && h.instances == 2 { Ok(()) } else { Err(format!("{h:?}")) }
    });
}
