//! Every node a Home Assistant device: the hub's discovery payloads as `mosquitto_sub`
//! sees them, checked by Home Assistant's own code (PyPI `homeassistant==2025.4.4` in a
//! Python 3.13 venv that `.ci/test` makes once in target/ha-venv: its MQTT
//! `DEVICE_DISCOVERY_SCHEMA`, each platform's `DISCOVERY_SCHEMA`, and each entity's
//! `value_template` rendered against the node's summary). Then: a check going critical
//! turns the service's `problem` on, Home Assistant saying `online` gets every device
//! again, a service that goes is removed, a forgotten node's device is removed.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, tool, wait_for};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const SERVICE: &str = "services {\n  name = \"web\"\n  port = 9\n  checks = [{ id = \"web\", name = \"web\", ttl = \"1h\", status = \"passing\" }]\n}\n";

/// Retained `topic payload` pairs under `filter`, as mosquitto_sub sees them now.
fn retained(port: u16, filter: &str) -> BTreeMap<String, String> {
    // `-W` counts from the CONNACK: a connection the broker never answers would wait for
    // ever (seen once, in CI), so the whole run is bounded too.
    let out = Command::new(tool("timeout"))
        .args(["-s", "KILL", "10"])
        .arg(tool("mosquitto_sub"))
        .args(["-i", "rabble-test-ha", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", filter, "-v"])
        .args(["--retained-only", "-W", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().filter_map(|l| l.split_once(' ')).map(|(t, p)| (t.to_owned(), p.to_owned())).collect()
}

/// Home Assistant's verdict on the devices (and their entities' states), or why not.
fn home_assistant(
    devices: &BTreeMap<String, String>,
    states: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let python = std::env::var("RABBLE_HA_PYTHON")
        .unwrap_or_else(|_| format!("{}/../target/ha-venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let script = format!("{}/ha/validate.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e} (`bash .ci/test` makes the Home Assistant venv)"));
    let input = serde_json::json!({ "devices": devices, "states": states });
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout}"))?;
    Ok(v["entities"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("None").to_owned()))
        .collect())
}

#[test]
fn nodes_are_home_assistant_devices_its_own_schemas_accept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("hub.toml");
    std::fs::write(&config, "[homeassistant]\nenabled = true\n").unwrap();
    let hub = Hub::start(d, &["--config", config.to_str().unwrap()]);
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service("web.hcl", SERVICE);
    let mut pi2 = Agent::start(d, "pi2", hub.mqtt_port, &[]);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    hub.wait_node("pi2", NodeStatus::Up, Duration::from_secs(15));
    hub.wait_check("web", rabble_shared::Status::Passing, Duration::from_secs(15));

    // Discovery, and the summaries the entities read.
    let devices = wait_for("both devices, pi1 with its service", Duration::from_secs(20), || {
        let d = retained(hub.mqtt_port, "homeassistant/device/+/config");
        let web = d.get("homeassistant/device/rabble_pi1/config").is_some_and(|p| p.contains("pi1_service_web"));
        if d.len() == 2 && web { Ok(d) } else { Err(format!("{d:?}")) }
    });
    let summaries = wait_for("the summaries", Duration::from_secs(20), || {
        let s = retained(hub.mqtt_port, "rabble/hub/nodes/+");
        let ready = s.get("rabble/hub/nodes/pi1").is_some_and(|p| p.contains("cpu_percent") && p.contains("\"web\""));
        if ready && s.len() == 2 { Ok(s) } else { Err(format!("{s:?}")) }
    });
    let pi1_summary: serde_json::Value = serde_json::from_str(&summaries["rabble/hub/nodes/pi1"]).unwrap();
    assert_eq!(
        (pi1_summary["status"].as_str(), pi1_summary["services"]["web"].as_str()),
        (Some("up"), Some("passing"))
    );
    let dev: serde_json::Value = serde_json::from_str(&devices["homeassistant/device/rabble_pi1/config"]).unwrap();
    assert_eq!(dev["dev"]["ids"][0], "rabble_pi1");
    assert_eq!(
        (dev["o"]["name"].as_str(), dev["state_topic"].as_str()),
        (Some("Rabble"), Some("rabble/hub/nodes/pi1"))
    );
    assert_eq!(dev["availability_topic"], "rabble/hub/status");

    let seen = home_assistant(&devices, &summaries).unwrap_or_else(|e| panic!("Home Assistant refuses: {e}"));
    println!("Home Assistant's entities: {seen:?}");
    assert_eq!(seen["rabble_pi1_connectivity"], "ON", "{seen:?}");
    assert_eq!(seen["rabble_pi1_service_web"], "OFF", "passing: no problem");
    let cpu: f64 = seen["rabble_pi1_cpu"].parse().unwrap_or_else(|_| panic!("{seen:?}"));
    assert!((0.0..=100.0).contains(&cpu));
    assert!(seen["rabble_pi2_memory"].parse::<f64>().is_ok(), "{seen:?}");
    assert_eq!(seen["rabble_pi2_allocations"], "0");

    // The check goes critical: the service's problem is on.
    pi1.write_service("web.hcl", &SERVICE.replace("passing", "critical"));
    let summaries = wait_for("web critical in the summary", Duration::from_secs(20), || {
        let s = retained(hub.mqtt_port, "rabble/hub/nodes/+");
        if s.get("rabble/hub/nodes/pi1").is_some_and(|p| p.contains("\"web\":\"critical\"")) {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    });
    let seen = home_assistant(&devices, &summaries).unwrap();
    assert_eq!(seen["rabble_pi1_service_web"], "ON", "{seen:?}");

    // Home Assistant restarts and says so: every device is sent to it again.
    let mut watch = Command::new(tool("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string(), "-t", "homeassistant/device/+/config", "-v"])
        .args(["-C", "4", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let pubd = Command::new(tool("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string(), "-t", "homeassistant/status", "-m", "online"])
        .status()
        .unwrap();
    assert!(pubd.success());
    let status = watch.wait().unwrap();
    assert!(status.success(), "2 retained + 2 sent again after `online` (mosquitto_sub -C 4 timed out)");
    drop(watch.stdout.take());

    // A service that goes: its entity is removed (published once with only its platform).
    let watch = Command::new(tool("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string(), "-t", "homeassistant/device/rabble_pi1/config"])
        .args(["-C", "3", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    pi1.remove_service("web.hcl");
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"pi1_service_web\":{\"p\":\"binary_sensor\"}"), "{text}");
    let now = retained(hub.mqtt_port, "homeassistant/device/rabble_pi1/config");
    let seen = home_assistant(&now, &summaries).unwrap();
    assert!(!seen.contains_key("rabble_pi1_service_web"), "{seen:?}");

    // A forgotten node's device goes.
    pi2.proc.stop("KILL");
    hub.wait_node("pi2", NodeStatus::Down, Duration::from_secs(15));
    let (ok, _, err) = hub.cli(&["node", "forget", "pi2"]);
    assert!(ok, "{err}");
    wait_for("pi2's device removed", Duration::from_secs(15), || {
        let d = retained(hub.mqtt_port, "homeassistant/device/+/config");
        if d.len() == 1 && d.contains_key("homeassistant/device/rabble_pi1/config") {
            Ok(())
        } else {
            Err(format!("{d:?}"))
        }
    });
}
