//! Home Assistant's MQTT device discovery, pure: every node a device (HA ≥ 2024.11: one
//! retained `<prefix>/device/rabble_<node>/config` with `dev`, `o` and `cmps`) whose
//! entities read the node's summary (`rabble/hub/nodes/<node>`, [`summary`]):
//! connectivity, CPU, memory, disk, temperature, uptime, Pi throttling as a `problem`,
//! running allocations, and each service on the node as a `problem` binary sensor of its
//! health. The hub's availability (`rabble/hub/status`) is every entity's availability.
//! A component that goes (a service moved away) is published once more with only its
//! platform, which is how Home Assistant removes it; a forgotten node's device is removed
//! with an empty retained payload (the task's doing).

use crate::catalog::state::Node;
use rabble_shared::alloc::ClientStatus;
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::Heartbeat;
use rabble_shared::summary::{NodeSummary, VERSION};
use rabble_shared::{NodeId, Status, topic};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// `[homeassistant]`: where discovery goes and what the devices say of their origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub prefix: String,
    /// Rabble's version (the origin's `sw`).
    pub version: String,
    /// The web UI (each device's `configuration_url`).
    pub ui_url: String,
}

/// Where a node's device is announced.
pub fn device_topic(prefix: &str, node: &NodeId) -> String {
    format!("{prefix}/device/rabble_{node}/config")
}

/// Where Home Assistant says it (re)started.
pub fn status_topic(prefix: &str) -> String {
    format!("{prefix}/status")
}

fn round1(x: f32) -> f32 {
    (x * 10.0).round() / 10.0
}

fn percent(used: u64, total: u64) -> Option<f32> {
    (total > 0).then(|| round1((used as f64 / total as f64 * 100.0) as f32))
}

/// A node at a glance, from the catalog and its last heartbeat (values rounded so a summary
/// changes only when something a person would see changes).
pub fn summary(node: &Node, heartbeat: Option<&Heartbeat>, running: u32) -> NodeSummary {
    let mut services: BTreeMap<String, Status> = BTreeMap::new();
    for reg in node.services.values() {
        let s = crate::catalog::health::status(node, reg);
        let worst = services.get(&reg.name).map_or(s, |w| (*w).max(s));
        services.insert(reg.name.clone(), worst);
    }
    let hb = heartbeat.filter(|_| node.status == NodeStatus::Up);
    let root = hb.and_then(|h| h.disks.iter().find(|d| d.mount == "/").or(h.disks.first()));
    NodeSummary {
        v: VERSION,
        status: if node.status == NodeStatus::Down { "down" } else { "up" }.into(),
        cpu_percent: hb.map(|h| round1(h.cpu_percent)),
        memory_percent: hb.and_then(|h| percent(h.memory_used_bytes, h.memory_total_bytes)),
        disk_percent: root.and_then(|d| percent(d.used_bytes, d.total_bytes)),
        temperature_c: hb.and_then(|h| h.temperature_c).map(round1),
        // Minutes: a summary that changes every second would be published every second.
        uptime_s: hb.map(|h| h.uptime_s / 60 * 60),
        throttled: hb.and_then(|h| h.throttled.as_ref()).map(|t| t.raw & 0xf != 0),
        allocations: running,
        services,
    }
}

/// Allocations running on each node.
pub fn running(catalog: &crate::catalog::state::Catalog) -> BTreeMap<NodeId, u32> {
    let mut out = BTreeMap::new();
    for a in catalog.work.allocs.values().filter(|a| a.client_status == ClientStatus::Running) {
        *out.entry(a.node.clone()).or_default() += 1;
    }
    out
}

/// One entity: its platform, id and name, and the rest of its options.
fn entity(node: &NodeId, id: &str, platform: &str, name: &str, rest: Value) -> (String, Value) {
    let mut o = Map::new();
    o.insert("p".into(), platform.into());
    o.insert("unique_id".into(), format!("rabble_{node}_{id}").into());
    o.insert("object_id".into(), format!("rabble_{node}_{id}").into());
    o.insert("name".into(), name.into());
    if let Value::Object(r) = rest {
        o.extend(r);
    }
    (format!("{node}_{id}"), Value::Object(o))
}

fn measure(node: &NodeId, id: &str, name: &str, field: &str, unit: &str, class: Option<&str>) -> (String, Value) {
    let mut rest = json!({
        "value_template": format!("{{{{ value_json.{field} | default(none) }}}}"),
        "unit_of_measurement": unit,
        "state_class": "measurement",
    });
    if let Some(c) = class {
        rest["device_class"] = c.into();
    }
    entity(node, id, "sensor", name, rest)
}

/// The components a node's device has now, by component id.
pub fn components(node: &NodeId, s: &NodeSummary) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut add = |(k, v): (String, Value)| drop(out.insert(k, v));
    add(entity(
        node,
        "connectivity",
        "binary_sensor",
        "Connectivity",
        json!({"device_class": "connectivity", "value_template": "{{ 'ON' if value_json.status == 'up' else 'OFF' }}"}),
    ));
    add(measure(node, "cpu", "CPU", "cpu_percent", "%", None));
    add(measure(node, "memory", "Memory", "memory_percent", "%", None));
    add(measure(node, "disk", "Disk", "disk_percent", "%", None));
    if s.temperature_c.is_some() {
        add(measure(node, "temperature", "Temperature", "temperature_c", "°C", Some("temperature")));
    }
    add(entity(
        node,
        "uptime",
        "sensor",
        "Uptime",
        json!({"device_class": "duration", "unit_of_measurement": "s", "entity_category": "diagnostic",
               "value_template": "{{ value_json.uptime_s | default(none) }}"}),
    ));
    if s.throttled.is_some() {
        add(entity(
            node,
            "throttled",
            "binary_sensor",
            "Throttled",
            json!({"device_class": "problem",
                   "value_template": "{{ 'ON' if value_json.throttled else 'OFF' }}"}),
        ));
    }
    add(entity(
        node,
        "allocations",
        "sensor",
        "Allocations",
        json!({"state_class": "measurement", "icon": "mdi:package-variant",
               "value_template": "{{ value_json.allocations }}"}),
    ));
    for name in s.services.keys() {
        add(entity(
            node,
            &format!("service_{name}"),
            "binary_sensor",
            &format!("Service {name}"),
            json!({"device_class": "problem",
                   "value_template": format!("{{{{ 'OFF' if value_json.services.get('{name}') == 'passing' else 'ON' }}}}")}),
        ));
    }
    out
}

/// A node's device discovery payload: its components now, and those in `gone` (published
/// before, not now) with only their platform, so Home Assistant removes them.
pub fn discovery(
    node: &NodeId,
    node_info: &Node,
    s: &NodeSummary,
    gone: &BTreeMap<String, String>,
    set: &Settings,
) -> Value {
    let mut cmps: Map<String, Value> = components(node, s).into_iter().collect();
    for (id, platform) in gone {
        cmps.entry(id.clone()).or_insert_with(|| json!({ "p": platform }));
    }
    let facts = node_info.facts.as_ref();
    let mut dev = json!({
        "ids": [format!("rabble_{node}")],
        "name": node.as_str(),
        "mf": "Rabble",
        "cu": set.ui_url.trim_end_matches('/').to_owned() + &format!("/nodes/{node}"),
    });
    if let Some(f) = facts {
        dev["mdl"] = format!("{} {} ({})", f.os.name, f.os.version, f.arch).into();
        dev["sw"] = format!("rabble-agent {}", f.agent_version).into();
    }
    json!({
        "dev": dev,
        "o": {"name": "Rabble", "sw": set.version, "url": "https://github.com/rabble-homelab/rabble"},
        "cmps": cmps,
        "state_topic": topic::node_summary(node),
        "availability_topic": topic::HUB_STATUS,
        "qos": 1,
    })
}

/// The platform of each component in a payload (what to remove if it goes).
pub fn platforms(payload: &Value) -> BTreeMap<String, String> {
    let Some(cmps) = payload["cmps"].as_object() else { return BTreeMap::new() };
    cmps.iter()
        .filter(|(_, c)| c.as_object().is_some_and(|o| o.len() > 1))
        .filter_map(|(k, c)| Some((k.clone(), c["p"].as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::state::Catalog;
    use crate::dns::fixture::add;
    use rabble_shared::msg::{DiskUse, Throttled};

    fn hb() -> Heartbeat {
        Heartbeat {
            seq: 1,
            uptime_s: 3_725,
            cpu_percent: 12.34,
            load: [0.0; 3],
            memory_used_bytes: 1,
            memory_total_bytes: 3,
            disks: vec![
                DiskUse { mount: "/boot".into(), used_bytes: 1, total_bytes: 2 },
                DiskUse { mount: "/".into(), used_bytes: 1, total_bytes: 4 },
            ],
            temperature_c: Some(48.26),
            throttled: Some(Throttled::from_raw(0x50000)),
            assignments_refused: 0,
            metrics: None,
        }
    }

    #[test]
    fn a_summary_is_rounded_and_says_only_what_is_known() {
        let mut c = Catalog::default();
        add(&mut c, "pi1", "192.168.1.11", "web", &[], None, Status::Critical);
        let n = &c.nodes[&NodeId::new("pi1").unwrap()];
        let s = summary(n, Some(&hb()), 2);
        assert_eq!((s.cpu_percent, s.memory_percent, s.disk_percent), (Some(12.3), Some(33.3), Some(25.0)));
        assert_eq!(
            (s.temperature_c, s.uptime_s, s.throttled),
            (Some(48.3), Some(3_720), Some(false)),
            "only past throttling"
        );
        assert_eq!((s.status.as_str(), s.allocations, s.services["web"]), ("up", 2, Status::Critical));
        let bare = summary(n, None, 0);
        assert_eq!((bare.cpu_percent, bare.temperature_c, bare.throttled), (None, None, None));
        let json = serde_json::to_string(&bare).unwrap();
        assert!(!json.contains("cpu_percent") && json.contains("\"web\":\"critical\""), "{json}");
    }

    #[test]
    fn a_device_has_what_its_node_has_and_removes_what_went() {
        let mut c = Catalog::default();
        add(&mut c, "pi1", "192.168.1.11", "web", &[], None, Status::Passing);
        let id = NodeId::new("pi1").unwrap();
        let set =
            Settings { prefix: "homeassistant".into(), version: "0.1.0".into(), ui_url: "http://hub:8500/ui/".into() };
        let with = summary(&c.nodes[&id], Some(&hb()), 0);
        let ids: Vec<String> = components(&id, &with).into_keys().collect();
        assert_eq!(
            ids,
            [
                "pi1_allocations",
                "pi1_connectivity",
                "pi1_cpu",
                "pi1_disk",
                "pi1_memory",
                "pi1_service_web",
                "pi1_temperature",
                "pi1_throttled",
                "pi1_uptime"
            ]
        );
        let without = summary(&c.nodes[&id], None, 0);
        assert!(!components(&id, &without).contains_key("pi1_temperature"), "no temperature: no sensor");
        let p = discovery(&id, &c.nodes[&id], &with, &BTreeMap::new(), &set);
        assert_eq!(device_topic(&set.prefix, &id), "homeassistant/device/rabble_pi1/config");
        assert_eq!(p["dev"]["cu"], "http://hub:8500/ui/nodes/pi1");
        assert_eq!(
            p["cmps"]["pi1_service_web"]["value_template"],
            "{{ 'OFF' if value_json.services.get('web') == 'passing' else 'ON' }}"
        );
        let before = platforms(&p);
        assert_eq!(before["pi1_service_web"], "binary_sensor");
        let gone: BTreeMap<String, String> = [("pi1_service_db".to_owned(), "binary_sensor".to_owned())].into();
        let p = discovery(&id, &c.nodes[&id], &with, &gone, &set);
        assert_eq!(
            p["cmps"]["pi1_service_db"],
            json!({"p": "binary_sensor"}),
            "published once with its platform alone"
        );
        assert!(!platforms(&p).contains_key("pi1_service_db"), "and not remembered as published");
    }
}
