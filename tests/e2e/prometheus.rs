//! A real Prometheus (Debian's package) pointed at the hub: it scrapes the hub's
//! `/metrics` (so the text format must parse) and discovers targets through
//! `http_sd_configs`. Debian builds Prometheus without its Consul discovery (its
//! config has no `consul_sd_configs`), so consul_sd's side is checked by making the
//! calls it makes — `/v1/agent/self`, then blocking `?stale` reads of
//! `/v1/catalog/services` and `/v1/health/service/<s>` — and reading what it reads.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, Proc, free_port, tool, wait_for};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn prometheus_scrapes_the_hub_and_discovers_http_sd_targets_and_consul_sds_calls_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "web.hcl",
        r#"services {
  name = "web"
  port = 9100
  tags = ["prometheus.scrape=true", "prometheus.path=/stats"]
  meta = { team = "home" }
}
"#,
    );
    pi1.write_service("db.hcl", "services {\n  name = \"db\"\n  port = 5432\n}\n");
    hub.wait_node("pi1", NodeStatus::Up, T);
    let api = hub.http.trim_start_matches("http://").to_owned();
    let web = free_port();
    let config = d.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: rabble-hub
    static_configs:
      - targets: ["{api}"]
  - job_name: http
    http_sd_configs:
      - url: "http://{api}/api/v1/prometheus/targets"
        refresh_interval: 1s
"#
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tool("prometheus"));
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"));
    let prom = Proc::spawn("prometheus", &mut cmd, d);
    let get = |path: &str| -> Result<serde_json::Value, String> {
        let url = format!("http://127.0.0.1:{web}{path}");
        let mut r = ureq::get(&url).call().map_err(|e| format!("{url}: {e}"))?;
        r.body_mut().read_json().map_err(|e| e.to_string())
    };
    let targets = wait_for("Prometheus to discover and scrape", T, || {
        let v = get("/api/v1/targets")?;
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let job = |j: &str| active.iter().filter(|t| t["labels"]["job"] == j).cloned().collect::<Vec<_>>();
        let (hubs, http) = (job("rabble-hub"), job("http"));
        let ok = hubs.iter().any(|t| t["health"] == "up") && http.len() == 1;
        if ok { Ok(active) } else { Err(format!("{}\n{}", serde_json::to_string(&active).unwrap(), prom.log())) }
    });
    let find = |job: &str| targets.iter().find(|t| t["labels"]["job"] == job).unwrap().clone();
    let http = find("http");
    assert_eq!(http["labels"]["instance"], "127.0.0.1:9100", "{http}");
    assert_eq!((http["labels"]["service"].as_str(), http["labels"]["node"].as_str()), (Some("web"), Some("pi1")));
    assert_eq!(http["discoveredLabels"]["__metrics_path__"], "/stats");
    assert_eq!(http["discoveredLabels"]["__meta_rabble_service_meta_team"], "home");
    // The hub's own figures, and the node's heartbeat figures, as queried from Prometheus.
    let q = wait_for("rabble_node_up in Prometheus", T, || {
        let v = get("/api/v1/query?query=rabble_node_up")?;
        let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if r.iter().any(|s| s["metric"]["node"] == "pi1") { Ok(r) } else { Err(v.to_string()) }
    });
    assert_eq!(q[0]["value"][1], "1");
    let v = get("/api/v1/query?query=rabble_node_memory_total_bytes").unwrap();
    assert!(v["data"]["result"][0]["value"][1].as_str().unwrap().parse::<f64>().unwrap() > 0.0, "{v}");
    // node_exporter's names from the agent's metrics (on its first heartbeat, then every
    // 10 s): a node_exporter dashboard's queries answer, labelled by node.
    for query in [
        "node_memory_MemAvailable_bytes",
        "node_load1",
        "node_filesystem_size_bytes",
        "node_time_seconds - node_boot_time_seconds",
        "node_cpu_seconds_total{mode=\"idle\"}",
    ] {
        let encode = |c: char| match c {
            ' ' | '"' | '{' | '}' | '=' | '+' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        };
        let url = format!("/api/v1/query?query={}", query.chars().map(encode).collect::<String>());
        let r = wait_for(query, T, || {
            let v = get(&url)?;
            let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
            if r.iter().any(|s| s["metric"]["node"] == "pi1") { Ok(r) } else { Err(v.to_string()) }
        });
        let value: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!(value > 0.0, "{query}: {r:?}");
    }

    // consul_sd's calls, in its order, and the fields its labels come from.
    let dc: serde_json::Value = hub.get("/v1/agent/self").unwrap();
    assert_eq!(dc["Config"]["Datacenter"], "dc1");
    let resp = ureq::get(&format!("{}/v1/catalog/services?stale&dc=dc1", hub.http)).call().unwrap();
    let index = resp.headers().get("x-consul-index").unwrap().to_str().unwrap().to_owned();
    let services: serde_json::Value =
        hub.get(&format!("/v1/catalog/services?index={index}&wait=1s&stale&dc=dc1")).unwrap();
    assert!(services.get("web").is_some() && services.get("db").is_some(), "{services}");
    let entries: serde_json::Value = hub.get("/v1/health/service/web?stale&dc=dc1").unwrap();
    let e = &entries[0];
    // target = Service.Address or Node.Address, and Service.Port
    assert_eq!((e["Service"]["Address"].as_str(), e["Node"]["Address"].as_str()), (Some(""), Some("127.0.0.1")));
    assert_eq!(e["Service"]["Port"], 9100);
    assert_eq!((e["Node"]["Node"].as_str(), e["Node"]["Datacenter"].as_str()), (Some("pi1"), Some("dc1")));
    assert!(e["Checks"].as_array().unwrap().iter().all(|c| c["Status"] == "passing"), "{e}");
    assert_eq!(e["Service"]["Meta"]["team"], "home");
    let wrong = ureq::get(&format!("{}/v1/catalog/services?dc=mars", hub.http))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(wrong.status(), 500, "an unknown datacenter is Consul's 500");
}
