//! The topic policy on both brokers: every kind of topic, published and read as a node, an
//! observer and the hub, against the embedded broker (over TLS, where the hub's relay
//! enforces the ACL) and a real Mosquitto running the shipped `acl_file`. The expectations
//! are written out by hand below, so a policy change that nobody meant fails here.

use rabble_shared::topic::POLICY;
use rabble_tests::probe::{self, Answer, Login};
use rabble_tests::{Hub, Mosquitto};
use std::collections::BTreeSet;

/// (topic, may node `pi-a` publish it, may `pi-a` read it). Observers read everything and
/// publish nothing; the hub does both.
const SPEC: &[(&str, bool, bool)] = &[
    ("rabble/hub/status", false, true),
    ("rabble/hub/routes/routing", false, true),
    ("rabble/kv/public/motd", false, false),
    ("rabble/hub/dns/zone", false, true),
    ("rabble/hub/dns/service/web", false, true),
    ("rabble/hub/dns/node/pi-b", false, true),
    ("rabble/alerts/3f2a9c1d0b4e5f60", false, false),
    ("rabble/hub/nodes/pi-a", false, false),
    ("rabble/node/pi-a/status", true, false),
    ("rabble/node/pi-b/status", false, false),
    ("rabble/node/pi-a/facts", true, false),
    ("rabble/node/pi-b/facts", false, false),
    ("rabble/node/pi-a/heartbeat", true, false),
    ("rabble/node/pi-b/heartbeat", false, false),
    ("rabble/node/pi-a/manifest", true, false),
    ("rabble/node/pi-b/manifest", false, false),
    ("rabble/node/pi-a/service/web", true, false),
    ("rabble/node/pi-b/service/web", false, false),
    ("rabble/node/pi-a/check/web", true, false),
    ("rabble/node/pi-b/check/web", false, false),
    ("rabble/node/pi-a/alloc/00ff", true, false),
    ("rabble/node/pi-b/alloc/00ff", false, false),
    ("rabble/node/pi-a/proxy", true, false),
    ("rabble/node/pi-b/proxy", false, false),
    ("rabble/node/pi-a/logs/9f", true, false),
    ("rabble/node/pi-b/logs/9f", false, false),
    ("rabble/node/pi-a/assignments", false, true),
    ("rabble/node/pi-b/assignments", false, false),
    ("rabble/node/pi-a/logs", false, true),
    ("rabble/node/pi-b/logs", false, false),
    ("rabble/node/pi-a/certs/ingress", false, true),
    ("rabble/node/pi-b/certs/ingress", false, false),
    ("rabble/node/pi-a/templates/00ff", false, true),
    ("rabble/node/pi-b/templates/00ff", false, false),
];

/// The retained message every reader may see; a read question ends when it arrives.
const SENTINEL: &str = "rabble/hub/status";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Node,
    Observer,
    Hub,
}

impl Role {
    fn may(self, publish: bool, read: bool) -> (bool, bool) {
        match self {
            Role::Node => (publish, read),
            Role::Observer => (false, true),
            Role::Hub => (true, true),
        }
    }
}

#[test]
fn the_spec_covers_every_kind_of_topic() {
    let spec: BTreeSet<String> =
        SPEC.iter().map(|(t, ..)| format!("{:?}", rabble_shared::topic::policy::kind_of(t).unwrap())).collect();
    let all: BTreeSet<String> = POLICY.iter().map(|p| format!("{:?}", p.kind)).collect();
    assert_eq!(spec, all, "every kind of topic needs a row in SPEC");
}

/// The embedded broker: a disallowed packet cuts the connection; an allowed one is acked.
/// (The hub itself logs in on the plain loopback listener, where no ACL applies.)
#[test]
fn the_embedded_broker_keeps_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("hub-data");
    let pi_a = rabble_tests::node_token(&data, "pi-a", &[]);
    let watcher = rabble_tests::node_token(&data, "watcher", &["--observer"]);
    let (hub, tls) = Hub::start_tls(d, &[]);
    let (port, ca) = (tls.port, Some(tls.ca));
    let node = Login { port, user: "pi-a".into(), pass: pi_a, ca: ca.clone() };
    let observer = Login { port, user: "watcher".into(), pass: watcher, ca };
    let mut wrong = Vec::new();
    for (i, &(t, node_pub, node_read)) in SPEC.iter().enumerate() {
        for (role, login) in [(Role::Node, &node), (Role::Observer, &observer)] {
            let (may_pub, may_read) = role.may(node_pub, node_read);
            let id = format!("probe-{i}");
            let published = probe::publish(login, &id, t, "{}", false);
            if published != if may_pub { Answer::Acked } else { Answer::Cut } {
                wrong.push(format!("{role:?} publishing {t}: {published:?}"));
            }
            let (answers, _) = probe::subscribe(login, &id, &[t, SENTINEL], SENTINEL);
            if answers[0] != if may_read { Answer::Acked } else { Answer::Cut } {
                wrong.push(format!("{role:?} subscribing to {t}: {answers:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "the embedded broker broke the policy:\n{}", wrong.join("\n"));
    assert!(hub.proc.log().contains("node pi-a: may not publish to \"rabble/node/pi-b/facts\""), "refusals are logged");
}

/// Mosquitto with the shipped `acl_file`: it drops what a client may not publish or read
/// (without cutting it), so each question looks at what arrives. A publish is made
/// retained, then the hub reads it back; a read is of a message the hub retained first.
#[test]
fn mosquitto_with_the_shipped_acl_keeps_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The observer has a name that is no node id, as docs/mqtt.md says.
    let users = [("rabble-hub", "hub-secret"), ("pi-a", "pi-a-secret"), ("Home.Assistant", "ha-secret")];
    let mq = Mosquitto::start_with_acl_and(d, &users, "\nuser Home.Assistant\ntopic read rabble/#\n");
    let login = |(user, pass): (&str, &str)| Login { port: mq.port, user: user.into(), pass: pass.into(), ca: None };
    let (hub, node, observer) = (login(users[0]), login(users[1]), login(users[2]));
    assert_eq!(probe::publish(&hub, "hub", SENTINEL, "online", true), Answer::Acked);
    // What the hub reads on `t` (retained), then clears it.
    let hub_reads = |t: &str| {
        let (_, got) = probe::subscribe(&hub, "hub-reads", &[t, SENTINEL], SENTINEL);
        let restore = if t == SENTINEL { "online" } else { "" };
        assert_eq!(probe::publish(&hub, "hub-clears", t, restore, true), Answer::Acked);
        got.into_iter().filter(|r| r.topic == t).map(|r| r.payload).collect::<Vec<_>>()
    };
    let mut wrong = Vec::new();
    for (i, &(t, node_pub, node_read)) in SPEC.iter().enumerate() {
        for (role, login) in [(Role::Node, &node), (Role::Observer, &observer), (Role::Hub, &hub)] {
            let (may_pub, may_read) = role.may(node_pub, node_read);
            let mark = format!("p{i}-{role:?}");
            probe::publish(login, &format!("probe-{i}"), t, &mark, true);
            let landed = hub_reads(t).contains(&mark);
            if landed != may_pub {
                wrong.push(format!("{role:?} publishing {t}: landed {landed}"));
            }
            let mark = format!("r{i}-{role:?}");
            assert_eq!(probe::publish(&hub, "hub-writes", t, &mark, true), Answer::Acked);
            let (_, got) = probe::subscribe(login, &format!("reader-{i}"), &[t, SENTINEL], SENTINEL);
            let read = got.iter().any(|r| r.topic == t && r.payload == mark);
            if read != may_read {
                wrong.push(format!("{role:?} reading {t}: read {read}"));
            }
            hub_reads(t);
        }
    }
    assert!(wrong.is_empty(), "Mosquitto with the shipped acl_file broke the policy:\n{}", wrong.join("\n"));
}

/// `[homeassistant] discovery_prefix = "ha"`: Home Assistant, an observer over TLS, reads its
/// devices under `ha/` and says its status there; the default prefix is no longer its.
#[test]
fn observers_follow_a_custom_home_assistant_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("hub-data");
    let watcher = rabble_tests::node_token(&data, "watcher", &["--observer"]);
    let pi1 = rabble_tests::node_token(&data, "pi1", &[]);
    let config = d.join("hub.toml");
    std::fs::write(&config, "[homeassistant]\nenabled = true\ndiscovery_prefix = \"ha\"\n").unwrap();
    let (hub, tls) = Hub::start_tls(d, &["--config", config.to_str().unwrap()]);
    let _pi = rabble_tests::Agent::start_tls(d, "pi1", &tls, &pi1, &[]);
    hub.wait_node("pi1", rabble_shared::api::NodeStatus::Up, std::time::Duration::from_secs(15));
    let ha = Login { port: tls.port, user: "watcher".into(), pass: watcher, ca: Some(tls.ca) };
    let device = "ha/device/rabble_pi1/config";
    let (answers, got) = probe::subscribe(&ha, "ha-reads", &["ha/#"], device);
    assert_eq!(answers, [Answer::Acked]);
    assert!(got.iter().any(|r| r.topic == device && r.payload.contains("\"cmps\"")), "{got:?}");
    assert_eq!(probe::publish(&ha, "ha-birth", "ha/status", "online", false), Answer::Acked);
    assert_eq!(probe::publish(&ha, "ha-old", "homeassistant/status", "online", false), Answer::Cut);
    let (answers, _) = probe::subscribe(&ha, "ha-old-reads", &["homeassistant/#", SENTINEL], SENTINEL);
    assert_eq!(answers, [Answer::Cut]);
}
