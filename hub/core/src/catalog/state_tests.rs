//! Rules of the catalog: idempotence, deregistration, manifests, liveness, views.

use super::*;
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::{CheckKind, CheckState, Heartbeat, Manifest, ServiceRegistration};
use rabble_shared::{Status, TopicId};

fn n(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}
fn t(s: &str) -> TopicId {
    TopicId::new(s).unwrap()
}
fn reg(name: &str) -> ServiceRegistration {
    ServiceRegistration {
        id: name.into(),
        name: name.into(),
        tags: vec![],
        address: None,
        port: Some(80),
        meta: Default::default(),
        source: String::new(),
    }
}
fn check(id: &str, service: &str, status: Status) -> CheckState {
    CheckState {
        id: id.into(),
        name: id.into(),
        service_id: Some(service.into()),
        kind: CheckKind::Http,
        status,
        output: String::new(),
        since_ms: 0,
    }
}

#[test]
fn same_registration_twice_is_not_a_change() {
    let mut c = Catalog::default();
    let a = c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), Some(reg("web")))));
    assert_eq!(a.dirty, vec![Dirty::Node(n("a")), Dirty::Service(n("a"), t("web"))]);
    let b = c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), Some(reg("web")))));
    assert_eq!(b, Applied::default(), "a reconnecting agent re-publishing must not write");
    assert_eq!(c.instance_count(), 1);
}

#[test]
fn deregistration_and_manifest_remove_ghosts() {
    let mut c = Catalog::default();
    c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), Some(reg("web")))));
    c.apply(Update::Node(n("a"), NodeUpdate::Service(t("db"), Some(reg("db")))));
    c.apply(Update::Node(n("a"), NodeUpdate::Check(t("service-db"), Some(check("service:db", "db", Status::Passing)))));
    let d = c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), None)));
    assert_eq!(d.dirty, vec![Dirty::Service(n("a"), t("web"))]);
    assert_eq!(c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), None))), Applied::default());
    let m = c.apply(Update::Node(n("a"), NodeUpdate::Manifest(Manifest { services: vec![], checks: vec![] })));
    assert_eq!(m.dirty, vec![Dirty::Service(n("a"), t("db")), Dirty::Check(n("a"), t("service-db"))]);
    assert_eq!(c.instance_count(), 0);
}

#[test]
fn liveness_transitions() {
    let mut c = Catalog::default();
    c.apply(Update::Node(n("a"), NodeUpdate::Online));
    assert_eq!(
        c.apply(Update::Node(n("zzz"), NodeUpdate::HeartbeatTimeout)),
        Applied::default(),
        "unknown nodes are not created"
    );
    let d = c.apply(Update::Node(n("a"), NodeUpdate::HeartbeatTimeout));
    assert_eq!(d.summaries, vec!["node a down (heartbeat-timeout)"]);
    assert_eq!(c.nodes[&n("a")].status, NodeStatus::Down);
    let u = c.apply(Update::Node(n("a"), NodeUpdate::Heartbeat(hb())));
    assert_eq!(u.summaries, vec!["node a up (heartbeat)"]);
    assert!(
        c.apply(Update::Node(n("a"), NodeUpdate::Heartbeat(hb()))).dirty.is_empty(),
        "heartbeats alone never write"
    );
    c.apply(Update::Node(n("a"), NodeUpdate::Offline));
    assert_eq!(c.nodes[&n("a")].reason, "offline");
}

fn hb() -> Heartbeat {
    Heartbeat {
        seq: 1,
        uptime_s: 1,
        cpu_percent: 0.0,
        load: [0.0; 3],
        memory_used_bytes: 0,
        memory_total_bytes: 0,
        disks: vec![],
        temperature_c: None,
        throttled: None,
        assignments_refused: 0,
        metrics: None,
    }
}

#[test]
fn views_aggregate_checks_and_node_status() {
    let mut c = Catalog::default();
    c.apply(Update::Node(n("a"), NodeUpdate::Service(t("web"), Some(reg("web")))));
    c.apply(Update::Node(
        n("b"),
        NodeUpdate::Service(t("web"), Some(ServiceRegistration { address: Some("10.0.0.9".into()), ..reg("web") })),
    ));
    c.apply(Update::Node(n("a"), NodeUpdate::Check(t("c1"), Some(check("c1", "web", Status::Passing)))));
    c.apply(Update::Node(n("a"), NodeUpdate::Check(t("c2"), Some(check("c2", "web", Status::Warning)))));
    let v = c.service_views();
    assert_eq!(v.len(), 1);
    let (ia, ib) = (&v[0].instances[0], &v[0].instances[1]);
    assert_eq!((ia.status, ia.checks.len()), (Status::Warning, 2));
    assert_eq!((ib.status, ib.address.as_str()), (Status::Passing, "10.0.0.9"));
    c.apply(Update::Node(n("b"), NodeUpdate::Offline));
    let v = c.service_views();
    assert_eq!(v[0].instances[1].status, Status::Critical, "a down node's instances are not healthy");
    // A node-level check (no service_id) counts for every service on the node.
    let mut node_check = check("mem", "x", Status::Critical);
    node_check.service_id = None;
    c.apply(Update::Node(n("a"), NodeUpdate::Check(t("mem"), Some(node_check))));
    assert_eq!(c.service_views()[0].instances[0].status, Status::Critical);
}

#[test]
fn a_forgotten_node_stays_gone_while_its_retained_topics_are_cleared() {
    let mut c = Catalog::default();
    c.apply(Update::Node(n("pi9"), NodeUpdate::Service(t("web"), Some(reg("web")))));
    c.apply(Update::Node(
        n("pi9"),
        NodeUpdate::Check(t("web-check"), Some(check("service:web", "web", Status::Passing))),
    ));
    c.apply(Update::Node(n("pi9"), NodeUpdate::Offline));
    let applied = c.apply(Update::Node(n("pi9"), NodeUpdate::Forget));
    assert!(applied.summaries.iter().any(|s| s == "node pi9 deregistered"), "{:?}", applied.summaries);
    assert!(c.nodes.is_empty() && c.service_views().is_empty());
    // The hub clears the node's retained service and check topics: empty payloads arrive.
    let index = c.index;
    for u in
        [NodeUpdate::Service(t("web"), None), NodeUpdate::Check(t("web-check"), None), NodeUpdate::HeartbeatTimeout]
    {
        let a = c.apply(Update::Node(n("pi9"), u));
        assert!(a.dirty.is_empty() && a.summaries.is_empty(), "{:?}", a.summaries);
    }
    assert!(c.nodes.is_empty(), "clearing a forgotten node's topics brought it back");
    assert_eq!(c.index, index);
    // Its agent, started again, joins again.
    c.apply(Update::Node(n("pi9"), NodeUpdate::Online));
    assert_eq!(c.nodes.len(), 1);
}
