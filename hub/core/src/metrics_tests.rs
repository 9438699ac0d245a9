//! `/metrics` and the http_sd list from a small catalog.

use super::*;
use crate::dns::fixture::add;
use rabble_shared::Status;
use rabble_shared::msg::{DiskUse, Heartbeat, NetUse, NodeMetrics, ThermalZone, Throttled};

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    add(
        &mut c,
        "pi1",
        "192.168.1.11",
        "web",
        &["prometheus.scrape=true", "prometheus.path=/stats"],
        None,
        Status::Passing,
    );
    add(&mut c, "pi2", "192.168.1.12", "db", &[], None, Status::Critical);
    c
}

fn heartbeats() -> HashMap<NodeId, Heartbeat> {
    let hb = Heartbeat {
        seq: 1,
        uptime_s: 60,
        cpu_percent: 12.5,
        load: [0.5, 0.25, 0.125],
        memory_used_bytes: 400,
        memory_total_bytes: 1000,
        disks: vec![DiskUse { mount: "/".into(), used_bytes: 8, total_bytes: 32 }],
        temperature_c: Some(48.5),
        throttled: Some(Throttled::from_raw(0x50005)),
        assignments_refused: 0,
        metrics: Some(NodeMetrics {
            cpu_seconds: [10.0, 0.0, 5.0, 900.0, 1.5, 0.0, 0.25, 0.0],
            memory_available_bytes: 600,
            swap_total_bytes: 100,
            swap_free_bytes: 90,
            net: vec![NetUse { device: "eth0".into(), rx_bytes: 1234, tx_bytes: 567 }],
            thermal: vec![ThermalZone { zone: 0, kind: "cpu-thermal".into(), celsius: 48.5 }],
        }),
    };
    HashMap::from([(NodeId::new("pi1").unwrap(), hb)])
}

#[test]
fn metrics_cover_the_hub_and_every_nodes_heartbeat_in_valid_text_format() {
    let c = catalog();
    let heartbeats = heartbeats();
    let ingest =
        IngestStats { accepted: 7, rejected: 2, rejected_by_reason: [("bad-topic".to_owned(), 2)].into(), commits: 5 };
    let dns = DnsStats::default();
    let lanes = [LaneTable { lane: "routing".into(), ..Default::default() }];
    let mut stats = rabble_shared::routes::RouterStats::default();
    stats.responses.insert("2xx".into(), 9);
    stats.count = 9;
    let proxy = HashMap::from([(
        NodeId::new("pi1").unwrap(),
        rabble_shared::routes::ProxyStats {
            lanes: [("routing".to_owned(), [("web".to_owned(), stats)].into())].into(),
        },
    )]);
    let text = render(&Sources {
        catalog: &c,
        heartbeats: &heartbeats,
        ingest: &ingest,
        dns: &dns,
        lanes: &lanes,
        proxy: &proxy,
        now_ms: 1_800_000_000_000,
    });
    for want in [
        "rabble_ingest_messages_total{result=\"accepted\"} 7",
        "rabble_ingest_rejected_total{reason=\"bad-topic\"} 2",
        "rabble_nodes{status=\"up\"} 2",
        "rabble_instances{status=\"critical\"} 1",
        "rabble_lane_routers{lane=\"routing\"} 0",
        "rabble_node_up{node=\"pi1\",datacenter=\"home\"} 1",
        "rabble_node_cpu_percent{node=\"pi1\"} 12.5",
        "rabble_node_load{node=\"pi1\",period=\"5m\"} 0.25",
        "rabble_node_disk_total_bytes{node=\"pi1\",mount=\"/\"} 32",
        "rabble_node_temperature_celsius{node=\"pi1\"} 48.5",
        "rabble_node_throttled{node=\"pi1\",flag=\"under-voltage\"} 1",
        "rabble_node_throttled{node=\"pi1\",flag=\"arm-freq-capped\"} 0",
        "rabble_dns_answer_seconds_count 0",
        "rabble_proxy_requests_total{node=\"pi1\",lane=\"routing\",router=\"web\",code=\"2xx\"} 9",
        "rabble_proxy_request_seconds_total{node=\"pi1\",lane=\"routing\",router=\"web\"} 0",
        // node_exporter's names and units.
        "node_load5{node=\"pi1\"} 0.25",
        "node_cpu_seconds_total{node=\"pi1\",cpu=\"all\",mode=\"idle\"} 900",
        "node_cpu_seconds_total{node=\"pi1\",cpu=\"all\",mode=\"softirq\"} 0.25",
        "node_memory_MemTotal_bytes{node=\"pi1\"} 1000",
        "node_memory_MemAvailable_bytes{node=\"pi1\"} 600",
        "node_memory_SwapFree_bytes{node=\"pi1\"} 90",
        "node_filesystem_avail_bytes{node=\"pi1\",mountpoint=\"/\",fstype=\"\"} 24",
        "node_network_receive_bytes_total{node=\"pi1\",device=\"eth0\"} 1234",
        "node_thermal_zone_temp{node=\"pi1\",zone=\"0\",type=\"cpu-thermal\"} 48.5",
        "node_boot_time_seconds{node=\"pi1\"} 1799999940",
        "# TYPE node_network_transmit_bytes_total counter",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Every sample line is `name{labels} number`, and every family is declared once.
    let mut declared = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(declared.insert(rest.split(' ').next().unwrap().to_owned()), "declared twice: {line}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
    }
}

/// The Grafana dashboard shipped in docs/ parses, and every metric its queries name is one
/// `/metrics` declares (a renamed metric breaks this test, not the user's dashboard).
#[test]
fn the_shipped_grafana_dashboard_uses_only_metrics_rabble_exports() {
    let c = catalog();
    let (heartbeats, ingest, dns) = (heartbeats(), IngestStats::default(), DnsStats::default());
    let lanes = [LaneTable { lane: "routing".into(), ..Default::default() }];
    let proxy = HashMap::new();
    let text = render(&Sources {
        catalog: &c,
        heartbeats: &heartbeats,
        ingest: &ingest,
        dns: &dns,
        lanes: &lanes,
        proxy: &proxy,
        now_ms: 1_800_000_000_000,
    });
    let declared: std::collections::BTreeSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/rabble-homelab.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    fn walk<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(e) = o.get("expr").and_then(|e| e.as_str()) {
                    out.push(e);
                }
                o.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&dash, &mut exprs);
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    let mut used = std::collections::BTreeSet::new();
    for e in &exprs {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("node_") || word.starts_with("rabble_") {
                used.insert(word);
            }
        }
    }
    let missing: Vec<&&str> = used.iter().filter(|m| !declared.contains(**m)).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics /metrics does not declare: {missing:?}");
    assert!(used.contains("node_cpu_seconds_total") && used.contains("rabble_node_up"), "{used:?}");
}

#[test]
fn http_sd_lists_opted_in_instances_with_labels() {
    let t = targets(&catalog());
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].targets, vec!["192.168.1.11:8080"]);
    assert_eq!(t[0].labels["service"], "web");
    assert_eq!(t[0].labels["node"], "pi1");
    assert_eq!(t[0].labels["__metrics_path__"], "/stats");
    assert_eq!(t[0].labels["__meta_rabble_health"], "passing");
    assert!(t[0].labels["__meta_rabble_tags"].contains(",prometheus.scrape=true,"));
}
