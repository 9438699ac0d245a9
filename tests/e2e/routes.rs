//! The HTTP routing table: lanes built from the seed's Traefik tags on real agents,
//! served by the API, published retained for nodes, following health.

use rabble_shared::api::NodeStatus;
use rabble_shared::routes::LaneTable;
use rabble_tests::{Agent, FlipServer, Hub, wait_for};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn lane(hub: &Hub, name: &str) -> LaneTable {
    let mut v: Vec<LaneTable> = hub.get(&format!("/api/v1/routes?lane={name}")).unwrap();
    v.remove(0)
}

#[test]
fn lanes_follow_the_seeds_tags_and_health_and_are_published_for_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("hub.toml");
    std::fs::write(
        &config,
        "[[lane]]\nname = \"routing\"\nprefix = \"routing\"\n\n[[lane]]\nname = \"ingress\"\nprefix = \"ingress\"\n\n\
         [[lane]]\nname = \"traefik\"\nprefix = \"traefik\"\n",
    )
    .unwrap();
    let hub = Hub::start(d, &["--config", &config.display().to_string()]);
    let filebot = FlipServer::start();
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    // The seed's filebot (routing lane) and docker-registry (both lanes), and one
    // broken tag next to good ones.
    pi1.write_service(
        "filebot.hcl",
        &format!(
            r#"services {{
  name = "filebot"
  port = 5452
  tags = [
    "routing.enable=true",
    "routing.http.routers.filebot.rule=Host(`filebot.service.consul`)",
    "routing.http.routers.broken.rule=Host(`oops`",
  ]
  checks = [{{ http = "{}", interval = "1s", timeout = "1s" }}]
}}
"#,
            filebot.url
        ),
    );
    pi1.write_service(
        "registry.hcl",
        r#"services {
  name = "docker-registry"
  port = 5000
  tags = [
    "routing.enable=true",
    "routing.http.routers.docker-registry.rule=Host(`docker-registry.service.consul`)",
    "ingress.enable=true",
    "ingress.http.routers.docker-registry.entrypoints=websecure",
    "ingress.http.routers.docker-registry.tls=true",
    "ingress.http.routers.docker-registry.tls.certresolver=cloudflare",
    "ingress.http.routers.docker-registry.rule=Host(`registry.shiveringjimmy.com`)",
  ]
}
"#,
    );
    // The seed's proxmox file: the traefik lane; its check (https://localhost:8006)
    // fails here, so it must stay out.
    std::fs::copy(crate::seed("proxmox.hcl"), pi1.services_dir.join("proxmox.hcl")).unwrap();
    hub.wait_node("pi1", NodeStatus::Up, T);

    let routing = wait_for("the routing lane", T, || {
        let t = lane(&hub, "routing");
        if t.routers.len() == 2 { Ok(t) } else { Err(format!("{:?}", t.routers.keys())) }
    });
    assert_eq!(routing.routers["filebot"].rule, "Host(`filebot.service.consul`)");
    assert_eq!(routing.routers["filebot"].priority, 30);
    assert_eq!(routing.services["filebot"].servers[0].url, "http://127.0.0.1:5452");
    assert_eq!(routing.services["docker-registry"].servers[0].url, "http://127.0.0.1:5000");
    // The broken tag is reported with its instance, and took nothing else down.
    let p = routing.problems.iter().find(|p| p.tag.contains("broken")).expect("the broken rule is reported");
    assert_eq!(p.instance, "pi1/filebot");
    assert!(p.reason.contains("at column"), "{p:?}");
    let ingress = lane(&hub, "ingress");
    let r = &ingress.routers["docker-registry"];
    assert_eq!(
        (r.rule.as_str(), r.entry_points.as_slice()),
        ("Host(`registry.shiveringjimmy.com`)", &["websecure".to_owned()][..])
    );
    assert_eq!(r.tls.as_ref().and_then(|t| t.cert_resolver.as_deref()), Some("cloudflare"));
    assert!(lane(&hub, "traefik").routers.is_empty(), "proxmox's check fails: not routed");

    // What a node sees: the retained table, without the hub's API. The hub
    // publishes after its own table changes, so a subscriber may still find the
    // previous retained table for a moment: it must reach the API's one.
    let retained = wait_for("the retained routing table", T, || {
        let out = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &hub.mqtt_port.to_string(),
                "-t",
                "rabble/hub/routes/routing",
                "-C",
                "1",
                "-W",
                "5",
            ])
            .output()
            .unwrap();
        let t: LaneTable = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}"))?;
        if t.routers == routing.routers { Ok(t) } else { Err(format!("{:?}", t.routers.keys())) }
    });
    assert_eq!(retained.services, routing.services);

    // Traefik's HTTP provider form.
    let traefik: serde_json::Value = hub.get("/v1/traefik/routing").unwrap();
    assert_eq!(traefik["http"]["routers"]["filebot"]["service"], "filebot");
    assert_eq!(traefik["http"]["services"]["filebot"]["loadBalancer"]["servers"][0]["url"], "http://127.0.0.1:5452");
    let (ok, text, e) = hub.cli(&["routes"]);
    assert!(ok && text.contains("filebot.service.consul") && text.contains("registry.shiveringjimmy.com"), "{text}{e}");
    assert!(text.contains("routing: pi1/filebot routing.http.routers.broken.rule"), "{text}");

    // A failing check takes filebot out of the lane; recovery brings it back.
    filebot.set(500);
    wait_for("filebot out of the routing lane", T, || {
        let t = lane(&hub, "routing");
        if t.routers.contains_key("filebot") { Err("still routed".into()) } else { Ok(()) }
    });
    filebot.set(200);
    wait_for("filebot back", T, || {
        let t = lane(&hub, "routing");
        if t.routers.contains_key("filebot") { Ok(()) } else { Err("not yet".into()) }
    });
    let (ok, _, e) = hub.cli(&["routes", "--lane", "nope"]);
    assert!(!ok && e.contains("no lane \"nope\""), "{e}");
}
