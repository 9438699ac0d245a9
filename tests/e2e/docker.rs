//! The Docker task driver against the real Docker engine: the agent (built with its
//! default `docker` feature) reports the engine's version in its node facts, and a
//! socket with no engine behind it as unhealthy, naming the socket.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub};
use std::process::Command;
use std::time::Duration;

const SOCKET: &str = "/var/run/docker.sock";

#[test]
fn the_agent_reports_the_docker_engine_in_its_facts() {
    let out = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    let engine = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => panic!("no Docker engine on {SOCKET}: `bash .ci/test` installs docker.io and starts dockerd"),
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _with = Agent::start(d, "with-docker", hub.mqtt_port, &["--docker-socket", SOCKET]);
    let nowhere = d.join("no-engine.sock");
    let _without = Agent::start(d, "no-docker", hub.mqtt_port, &["--docker-socket", nowhere.to_str().unwrap()]);
    let _off = Agent::start(d, "docker-off", hub.mqtt_port, &["--no-docker"]);
    for n in ["with-docker", "no-docker", "docker-off"] {
        hub.wait_node(n, NodeStatus::Up, Duration::from_secs(15));
    }
    let docker = hub.wait_driver("with-docker", "docker", Duration::from_secs(10));
    assert!(docker.healthy, "{docker:?}");
    assert_eq!(docker.version, engine);
    let missing = hub.wait_driver("no-docker", "docker", Duration::from_secs(10));
    assert!(!missing.healthy && missing.detail.contains("no-engine.sock"), "{missing:?}");
    let drivers = |node: &str| {
        let n = hub.nodes().into_iter().find(|n| n.id.as_str() == node).unwrap();
        n.facts.map(|f| f.drivers).unwrap_or_default()
    };
    assert!(!drivers("docker-off").contains_key("docker"), "--no-docker: no docker driver reported");
    // And the operator sees it in `rabble nodes`.
    let out = Command::new(rabble_tests::bin("rabble")).arg("nodes").env("RABBLE_ADDR", &hub.http).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().is_some_and(|h| h.contains("DOCKER")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("with-docker") && l.contains(&engine)), "{table}");
    assert!(table.lines().any(|l| l.starts_with("no-docker") && l.contains(" down ")), "{table}");
    let off = table.lines().find(|l| l.starts_with("docker-off")).unwrap_or_default();
    assert!(!off.contains(&engine) && !off.contains(" down "), "{table}");
}
