//! Hostile and broken MQTT input: the hub counts and drops it, stays up, and the
//! catalog does not change.

use rabble_shared::api::{NodeStatus, ServiceView};
use rabble_tests::*;
use std::time::Duration;

fn catalog_without_live_fields(hub: &Hub) -> (Vec<ServiceView>, Vec<(String, NodeStatus, String)>) {
    let nodes = hub.nodes().into_iter().map(|n| (n.id.to_string(), n.status, format!("{:?}", n.facts))).collect();
    (hub.services(), nodes)
}

#[test]
fn malformed_payloads_on_every_agent_topic_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let a = Agent::start(dir.path(), "target", hub.mqtt_port, &[]);
    a.write_service("s.toml", "[[service]]\nname = \"web\"\nport = 80\n[[service.checks]]\nid = \"web-ttl\"\nttl = \"10m\"\nstatus = \"passing\"\n");
    hub.wait_check("web-ttl", rabble_shared::Status::Passing, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let before = catalog_without_live_fields(&hub);
    let rejected_before = hub.health().unwrap().ingest.rejected;

    // Over the hub's 64 KiB limit for agent messages, under the broker's (which leaves
    // room for the hub's signed assignments).
    let large = vec![b'x'; 200 * 1024];
    let huge = vec![b'x'; 300 * 1024];
    let cases: Vec<(&str, &[u8])> = vec![
        ("rabble/node/target/status", b"maybe"),
        ("rabble/node/target/status", b"\x00\xff"),
        ("rabble/node/target/facts", b"{"),
        ("rabble/node/target/facts", b"{\"v\":2,\"name\":\"x\"}"),
        ("rabble/node/target/facts", b"[1,2,3]"),
        ("rabble/node/target/heartbeat", b"{\"v\":1,\"seq\":\"many\"}"),
        ("rabble/node/target/heartbeat", b"null"),
        ("rabble/node/target/manifest", b"{\"v\":1,\"services\":[\"BAD ID\"],\"checks\":[]}"),
        ("rabble/node/target/service/web", b"{\"v\":1,\"id\":\"db\",\"name\":\"db\"}"),
        ("rabble/node/target/service/web", b"{\"v\":1,\"id\":\"web\",\"name\":\"\"}"),
        ("rabble/node/target/service/web", b"\xde\xad\xbe\xef"),
        ("rabble/node/target/check/web-ttl", b"{\"v\":1,\"id\":\"web-ttl\",\"status\":\"fine\"}"),
        ("rabble/node/target/check/web-ttl", b"{\"v\":99}"),
        ("rabble/node/Target/facts", b"{}"),
        ("rabble/node/target/unknown", b"{}"),
        ("rabble/node/target/service/a/b", b"{}"),
        ("rabble/node/new-node/facts", b"not json"),
        ("rabble/node/target/heartbeat", &large),
        ("rabble/node/target/alloc/0123", b"{\"v\":1,\"id\":\"0123\",\"status\":\"lost\",\"tasks\":{}}"),
    ];
    for (topic, payload) in &cases {
        mosquitto_pub(hub.mqtt_port, topic, payload).unwrap();
    }
    // The embedded broker refuses an oversized publish itself: it cuts the publisher
    // off and the hub never sees it.
    let cut = mosquitto_pub(hub.mqtt_port, "rabble/node/target/heartbeat", &huge).unwrap_err();
    assert!(cut.contains("lost"), "{cut}");
    let want = rejected_before + cases.len() as u64;
    wait_for("every bad message to be counted", Duration::from_secs(10), || {
        let h = hub.health()?;
        if h.ingest.rejected >= want { Ok(()) } else { Err(format!("{:?}", h.ingest)) }
    });
    let h = hub.health().unwrap();
    eprintln!("rejections: {:?}", h.ingest.rejected_by_reason);
    for reason in ["bad-topic", "bad-payload", "bad-version", "id-mismatch", "too-large"] {
        assert!(h.ingest.rejected_by_reason.get(reason).copied().unwrap_or(0) > 0, "no {reason} in {:?}", h.ingest);
    }
    assert_eq!(catalog_without_live_fields(&hub), before, "the catalog changed");
    assert!(hub.nodes().iter().all(|n| n.id.as_str() != "new-node"), "garbage created a node");
    assert!(hub.proc.log().contains("rejected message"), "rejections are logged");
    // The agent's own traffic still flows.
    let (ok, err) = a.ctl(&["check", "warn", "web-ttl"]);
    assert!(ok, "{err}");
    hub.wait_check("web-ttl", rabble_shared::Status::Warning, Duration::from_secs(5));
}
