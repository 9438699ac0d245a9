//! Prometheus, pure: `render` writes `/metrics` in the text exposition format (the hub's
//! own figures and every node's heartbeat figures, labelled `node`, so a homelab can
//! drop node_exporter from its Pis); `targets` builds the `http_sd` list of instances
//! that opt in to scraping with the tag `prometheus.scrape=true`.

use crate::catalog::{Catalog, health};
use crate::dns::stats::DnsStats;
use rabble_shared::NodeId;
use rabble_shared::api::{IngestStats, NodeStatus};
use rabble_shared::msg::Heartbeat;
use rabble_shared::routes::LaneTable;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// What `/metrics` reports.
pub struct Sources<'a> {
    pub catalog: &'a Catalog,
    /// Each node's last heartbeat (the hub keeps them in memory, not in the catalog).
    pub heartbeats: &'a HashMap<NodeId, Heartbeat>,
    pub ingest: &'a IngestStats,
    pub dns: &'a DnsStats,
    pub lanes: &'a [LaneTable],
    /// Each node's lane proxy counters.
    pub proxy: &'a HashMap<NodeId, rabble_shared::routes::ProxyStats>,
    /// The hub's clock (ms since the epoch): `node_time_seconds`, and boot times from uptimes.
    pub now_ms: u64,
}

/// A family's samples: rendered labels and values.
type Samples = Vec<(String, f64)>;

/// A label value, escaped as the format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: HELP, TYPE and its samples (`labels` already rendered).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

pub fn render(s: &Sources<'_>) -> String {
    let mut out = String::new();
    let c = s.catalog;
    let i = s.ingest;
    let one = |l: String, v: f64| vec![(l, v)];
    family(
        &mut out,
        "rabble_ingest_messages_total",
        "counter",
        "MQTT messages the hub received, by result.",
        &[("result=\"accepted\"".into(), i.accepted as f64), ("result=\"rejected\"".into(), i.rejected as f64)],
    );
    let rejected: Vec<(String, f64)> =
        i.rejected_by_reason.iter().map(|(r, n)| (format!("reason=\"{}\"", esc(r)), *n as f64)).collect();
    family(&mut out, "rabble_ingest_rejected_total", "counter", "Messages refused, by reason.", &rejected);
    family(
        &mut out,
        "rabble_catalog_commits_total",
        "counter",
        "Catalog commits to redb.",
        &one(String::new(), i.commits as f64),
    );
    family(
        &mut out,
        "rabble_catalog_index",
        "gauge",
        "The catalog's index (rises with every change).",
        &one(String::new(), c.index as f64),
    );
    let up = c.nodes.values().filter(|n| n.status == NodeStatus::Up).count();
    family(
        &mut out,
        "rabble_nodes",
        "gauge",
        "Nodes by status.",
        &[("status=\"up\"".into(), up as f64), ("status=\"down\"".into(), (c.nodes.len() - up) as f64)],
    );
    let mut by_status: BTreeMap<String, f64> = BTreeMap::new();
    for n in c.nodes.values() {
        for r in n.services.values() {
            *by_status.entry(health::status(n, r).to_string()).or_default() += 1.0;
        }
    }
    let inst: Vec<(String, f64)> = by_status.into_iter().map(|(k, v)| (format!("status=\"{k}\""), v)).collect();
    family(&mut out, "rabble_instances", "gauge", "Service instances by aggregate health.", &inst);
    family(
        &mut out,
        "rabble_services",
        "gauge",
        "Distinct service names.",
        &one(String::new(), c.service_count() as f64),
    );
    family(&mut out, "rabble_jobs", "gauge", "Jobs the hub knows.", &one(String::new(), c.work.jobs.len() as f64));
    let mut allocs: BTreeMap<String, f64> = BTreeMap::new();
    for a in c.work.allocs.values() {
        *allocs.entry(a.client_status.as_str().to_owned()).or_default() += 1.0;
    }
    let allocs: Vec<(String, f64)> = allocs.into_iter().map(|(k, v)| (format!("status=\"{}\"", esc(&k)), v)).collect();
    family(
        &mut out,
        "rabble_allocations",
        "gauge",
        "Allocations by client status (placements the scheduler made).",
        &allocs,
    );
    for (name, help, f) in [
        (
            "rabble_lane_routers",
            "Routers served in each HTTP lane.",
            (|t: &LaneTable| t.routers.len()) as fn(&LaneTable) -> usize,
        ),
        ("rabble_lane_services", "Services (with servers) in each HTTP lane.", |t: &LaneTable| t.services.len()),
        ("rabble_lane_problems", "Tags or routers a lane could not use.", |t: &LaneTable| t.problems.len()),
    ] {
        let v: Vec<(String, f64)> =
            s.lanes.iter().map(|t| (format!("lane=\"{}\"", esc(&t.lane)), f(t) as f64)).collect();
        family(&mut out, name, "gauge", help, &v);
    }
    s.dns.render(&mut out);
    nodes(&mut out, s);
    node_exporter(&mut out, s);
    proxies(&mut out, s);
    out
}

/// The lane proxies' counters, by node, lane and router (`-`: no router matched).
fn proxies(out: &mut String, s: &Sources<'_>) {
    let (mut requests, mut sum) = (Vec::new(), Vec::new());
    let mut nodes: Vec<_> = s.proxy.iter().collect();
    nodes.sort_by(|a, b| a.0.cmp(b.0));
    for (node, p) in nodes {
        for (lane, routers) in &p.lanes {
            for (router, r) in routers {
                let l = format!("node=\"{}\",lane=\"{}\",router=\"{}\"", esc(node.as_str()), esc(lane), esc(router));
                for (code, n) in &r.responses {
                    requests.push((format!("{l},code=\"{}\"", esc(code)), *n as f64));
                }
                sum.push((l, r.seconds_sum));
            }
        }
    }
    family(
        out,
        "rabble_proxy_requests_total",
        "counter",
        "Requests a node's lane proxy answered, by router and response class.",
        &requests,
    );
    family(
        out,
        "rabble_proxy_request_seconds_total",
        "counter",
        "Time a node's lane proxy spent answering, by router (divide by requests for the mean).",
        &sum,
    );
}

/// Families gathered by name (help and samples), written in name order; `_total` ones
/// are counters.
#[derive(Default)]
struct Families(BTreeMap<&'static str, (&'static str, Samples)>);

impl Families {
    fn add(&mut self, name: &'static str, help: &'static str, labels: String, v: f64) {
        self.0.entry(name).or_insert((help, Vec::new())).1.push((labels, v));
    }

    fn write(self, out: &mut String) {
        for (name, (help, samples)) in self.0 {
            let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
            family(out, name, kind, help, &samples);
        }
    }
}

/// Every node's liveness and last heartbeat.
fn nodes(out: &mut String, s: &Sources<'_>) {
    let mut f = Families::default();
    let mut add = |name, help, labels, v| f.add(name, help, labels, v);
    for (id, n) in &s.catalog.nodes {
        let node = format!("node=\"{}\"", esc(id.as_str()));
        let dc = n.facts.as_ref().map(|f| f.datacenter.clone()).unwrap_or_default();
        let up = if n.status == NodeStatus::Up { 1.0 } else { 0.0 };
        add("rabble_node_up", "1 while the node is up.", format!("{node},datacenter=\"{}\"", esc(&dc)), up);
        let Some(hb) = s.heartbeats.get(id) else { continue };
        add(
            "rabble_node_cpu_percent",
            "CPU use over the last heartbeat period.",
            node.clone(),
            f64::from(hb.cpu_percent),
        );
        for (k, v) in ["1", "5", "15"].iter().zip(hb.load) {
            add("rabble_node_load", "Load average.", format!("{node},period=\"{k}m\""), f64::from(v));
        }
        add("rabble_node_memory_used_bytes", "Memory in use.", node.clone(), hb.memory_used_bytes as f64);
        add("rabble_node_memory_total_bytes", "Memory installed.", node.clone(), hb.memory_total_bytes as f64);
        add("rabble_node_uptime_seconds", "Time since boot.", node.clone(), hb.uptime_s as f64);
        for d in &hb.disks {
            let l = format!("{node},mount=\"{}\"", esc(&d.mount));
            add("rabble_node_disk_used_bytes", "Disk space in use.", l.clone(), d.used_bytes as f64);
            add("rabble_node_disk_total_bytes", "Disk size.", l, d.total_bytes as f64);
        }
        if let Some(t) = hb.temperature_c {
            add("rabble_node_temperature_celsius", "SoC temperature.", node.clone(), f64::from(t));
        }
        if let Some(th) = &hb.throttled {
            for (bit, flag) in ["under-voltage", "arm-freq-capped", "throttled", "soft-temp-limit"].iter().enumerate() {
                let now = f64::from(th.raw >> bit & 1);
                add(
                    "rabble_node_throttled",
                    "Raspberry Pi firmware throttling flags, now (1) or not (0).",
                    format!("{node},flag=\"{flag}\""),
                    now,
                );
            }
        }
        add(
            "rabble_node_assignments_refused_total",
            "Assignment or logs messages the agent refused.",
            node,
            hb.assignments_refused as f64,
        );
    }
    f.write(out);
}

/// Every node's figures under node_exporter's names and units, labelled `node`, so
/// dashboards made for node_exporter work with `node` in place of `instance`. CPU time is
/// the sum over the node's CPUs (`cpu="all"`): per-CPU panels show one line.
fn node_exporter(out: &mut String, s: &Sources<'_>) {
    let mut f = Families::default();
    let mut add = |name, help, labels, v| f.add(name, help, labels, v);
    for id in s.catalog.nodes.keys() {
        let Some(hb) = s.heartbeats.get(id) else { continue };
        let node = format!("node=\"{}\"", esc(id.as_str()));
        for (name, v) in ["node_load1", "node_load5", "node_load15"].into_iter().zip(hb.load) {
            add(name, "Load average.", node.clone(), f64::from(v));
        }
        add("node_memory_MemTotal_bytes", "Memory installed.", node.clone(), hb.memory_total_bytes as f64);
        let now_s = s.now_ms as f64 / 1000.0;
        add("node_time_seconds", "The hub's clock when it answered.", node.clone(), now_s);
        add("node_boot_time_seconds", "When the node booted.", node.clone(), (now_s - hb.uptime_s as f64).floor());
        let fs_of = |mount: &str| {
            let facts = s.catalog.nodes.get(id).and_then(|n| n.facts.as_ref());
            facts.and_then(|f| f.disks.iter().find(|d| d.mount == mount)).map(|d| d.fs.clone()).unwrap_or_default()
        };
        for d in &hb.disks {
            let l = format!("{node},mountpoint=\"{}\",fstype=\"{}\"", esc(&d.mount), esc(&fs_of(&d.mount)));
            add("node_filesystem_size_bytes", "Filesystem size.", l.clone(), d.total_bytes as f64);
            let avail = d.total_bytes.saturating_sub(d.used_bytes) as f64;
            add("node_filesystem_avail_bytes", "Filesystem space available to non-root users.", l, avail);
        }
        let Some(m) = &hb.metrics else { continue };
        for (mode, secs) in rabble_shared::msg::CPU_MODES.iter().zip(m.cpu_seconds) {
            let l = format!("{node},cpu=\"all\",mode=\"{mode}\"");
            add("node_cpu_seconds_total", "Seconds the CPUs spent in each mode (all CPUs).", l, secs);
        }
        add("node_memory_MemAvailable_bytes", "Memory available.", node.clone(), m.memory_available_bytes as f64);
        add("node_memory_SwapTotal_bytes", "Swap size.", node.clone(), m.swap_total_bytes as f64);
        add("node_memory_SwapFree_bytes", "Swap free.", node.clone(), m.swap_free_bytes as f64);
        for n in &m.net {
            let l = format!("{node},device=\"{}\"", esc(&n.device));
            add("node_network_receive_bytes_total", "Bytes received.", l.clone(), n.rx_bytes as f64);
            add("node_network_transmit_bytes_total", "Bytes sent.", l, n.tx_bytes as f64);
        }
        for t in &m.thermal {
            let l = format!("{node},zone=\"{}\",type=\"{}\"", t.zone, esc(&t.kind));
            add("node_thermal_zone_temp", "Zone temperature in Celsius.", l, f64::from(t.celsius));
        }
    }
    f.write(out);
}

/// One http_sd target group.
#[derive(Debug, serde::Serialize)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Instances tagged `prometheus.scrape=true`; `prometheus.port=`, `prometheus.path=` and
/// `prometheus.scheme=` tags override the instance's port, `/metrics` and `http`.
pub fn targets(c: &Catalog) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for (id, n) in &c.nodes {
        for r in n.services.values() {
            let tag = |k: &str| r.tags.iter().find_map(|t| t.strip_prefix(k)).map(str::to_owned);
            if tag("prometheus.scrape=").as_deref() != Some("true") {
                continue;
            }
            let Some(addr) = health::address(n, r) else { continue };
            let Some(port) = tag("prometheus.port=").and_then(|p| p.parse::<u16>().ok()).or(r.port) else { continue };
            let host = if addr.contains(':') { format!("[{addr}]") } else { addr.to_owned() };
            let mut labels = BTreeMap::from([
                ("service".to_owned(), r.name.clone()),
                ("node".to_owned(), id.to_string()),
                ("instance_id".to_owned(), r.id.clone()),
                ("datacenter".to_owned(), n.facts.as_ref().map(|f| f.datacenter.clone()).unwrap_or_default()),
                ("__metrics_path__".to_owned(), tag("prometheus.path=").unwrap_or_else(|| "/metrics".into())),
                ("__scheme__".to_owned(), tag("prometheus.scheme=").unwrap_or_else(|| "http".into())),
                ("__meta_rabble_health".to_owned(), health::status(n, r).to_string()),
                ("__meta_rabble_tags".to_owned(), format!(",{},", r.tags.join(","))),
            ]);
            for (k, v) in &r.meta {
                let k: String = k.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                labels.insert(format!("__meta_rabble_service_meta_{k}"), v.clone());
            }
            out.push(TargetGroup { targets: vec![format!("{host}:{port}")], labels });
        }
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
