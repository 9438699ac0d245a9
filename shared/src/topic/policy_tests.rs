//! The topic policy's tests: kinds in order, filters and Mosquitto patterns, who may
//! publish and read what.

use super::*;

#[test]
fn the_hubs_outputs_have_kinds_without_being_parsed() {
    let n = NodeId::new("pi-3").unwrap();
    assert_eq!(kind_of(&crate::topic::alert("3f2a9c1d0b4e5f60")), Some(Kind::Alert));
    assert_eq!(kind_of(&crate::topic::node_summary(&n)), Some(Kind::NodeSummary));
    assert_eq!(kind_of("rabble/node/pi-3/facts"), Some(Kind::NodeFacts));
    for t in [
        "rabble/alerts/3F2A9C1D0B4E5F60",
        "rabble/alerts/3f2a",
        "rabble/alerts/3f2a9c1d0b4e5f60/x",
        "rabble/hub/nodes/Pi3",
        "x",
    ] {
        assert_eq!(kind_of(t), None, "{t}");
    }
}

#[test]
fn policy_is_in_kind_order() {
    for (i, p) in POLICY.iter().enumerate() {
        assert_eq!(p.kind as usize, i, "{:?}", p.kind);
        assert!(p.qos <= 1);
    }
}

#[test]
fn filters_and_mosquitto_patterns() {
    assert_eq!(Kind::Service.policy().filter(Some("pi1")), "rabble/node/pi1/service/+");
    assert_eq!(Kind::Service.policy().filter(None), "rabble/node/+/service/+");
    assert_eq!(Kind::Kv.policy().filter(None), "rabble/kv/#");
    assert_eq!(Kind::Certs.policy().mosquitto(), "rabble/node/%u/certs/+");
}

#[test]
fn covers_is_filter_containment() {
    for (allowed, filter, want) in [
        ("rabble/hub/status", "rabble/hub/status", true),
        ("rabble/hub/routes/+", "rabble/hub/routes/+", true),
        ("rabble/hub/routes/+", "rabble/hub/routes/ingress", true),
        ("rabble/hub/routes/+", "rabble/hub/routes/#", false),
        ("rabble/hub/routes/+", "rabble/hub/#", false),
        ("rabble/hub/routes/+", "rabble/hub/routes", false),
        ("rabble/hub/routes/+", "rabble/hub/routes/a/b", false),
        ("rabble/node/pi1/certs/+", "rabble/node/+/certs/+", false),
        ("rabble/node/pi1/certs/+", "rabble/node/pi2/certs/x", false),
        ("rabble/#", "rabble/node/+/facts", true),
        ("rabble/#", "#", false),
        ("rabble/#", "+/node", false),
        ("rabble/hub/status", "rabble/hub/+", false),
    ] {
        assert_eq!(covers(allowed, filter), want, "{allowed} covers {filter}");
    }
}

#[test]
fn nodes_publish_their_own_state_and_read_what_the_hub_sends_them() {
    let n = NodeId::new("pi1").unwrap();
    for t in ["rabble/node/pi1/facts", "rabble/node/pi1/service/web", "rabble/node/pi1/logs/9f"] {
        assert!(node_may_publish(&n, t), "{t}");
    }
    for t in [
        "rabble/node/pi2/facts",
        "rabble/node/pi1/assignments",
        "rabble/node/pi1/logs",
        "rabble/node/pi1/certs/ingress",
        "rabble/node/pi1/templates/00ff",
        "rabble/node/pi1/unknown",
        "rabble/node/pi1/facts/extra",
        "rabble/hub/status",
        "rabble/kv/x",
    ] {
        assert!(!node_may_publish(&n, t), "{t}");
    }
    for f in [
        "rabble/hub/status",
        "rabble/hub/routes/+",
        "rabble/hub/routes/ingress",
        "rabble/node/pi1/assignments",
        "rabble/node/pi1/logs",
        "rabble/node/pi1/certs/+",
        "rabble/node/pi1/templates/+",
        "rabble/node/pi1/templates/00ff",
    ] {
        assert!(node_may_subscribe(&n, f), "{f}");
    }
    for f in [
        "rabble/#",
        "#",
        "rabble/node/+/assignments",
        "rabble/node/pi2/assignments",
        "rabble/node/pi1/#",
        "rabble/node/pi1/facts",
        "rabble/kv/#",
        "rabble/hub/+",
    ] {
        assert!(!node_may_subscribe(&n, f), "{f}");
    }
}
