//! Every MQTT topic Rabble uses, in one place: builders for publishers, one parser for
//! subscribers, and the [`policy`] — who publishes each topic, whether it is retained, its
//! QoS and who may read it — from which both brokers' ACLs and docs/mqtt.md are made.

pub mod policy;

pub use policy::{Kind, POLICY, Policy, Publisher, Readers};

use crate::id::{AllocId, NodeId, TopicId};

/// The root every Rabble topic lives under.
pub const ROOT: &str = "rabble";
/// Subscribe here to see the whole cluster.
pub const ALL: &str = "rabble/#";
/// Everything the nodes publish (and what the hub sends each node).
pub const ALL_NODES: &str = "rabble/node/#";
/// The hub's availability (its Last Will says `offline`).
pub const HUB_STATUS: &str = "rabble/hub/status";
/// Availability payloads, as Home Assistant and most MQTT tools expect them.
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// `lane` must pass [`crate::routes::valid_lane`].
pub fn routes(lane: &str) -> String {
    format!("rabble/hub/routes/{lane}")
}
/// Every lane's table.
pub const ALL_ROUTES: &str = "rabble/hub/routes/+";

pub fn node_status(node: &NodeId) -> String {
    format!("rabble/node/{node}/status")
}
pub fn node_facts(node: &NodeId) -> String {
    format!("rabble/node/{node}/facts")
}
pub fn node_heartbeat(node: &NodeId) -> String {
    format!("rabble/node/{node}/heartbeat")
}
pub fn node_manifest(node: &NodeId) -> String {
    format!("rabble/node/{node}/manifest")
}
pub fn service(node: &NodeId, service: &TopicId) -> String {
    format!("rabble/node/{node}/service/{service}")
}
pub fn check(node: &NodeId, check: &TopicId) -> String {
    format!("rabble/node/{node}/check/{check}")
}

pub fn assignments(node: &NodeId) -> String {
    format!("rabble/node/{node}/assignments")
}
pub fn alloc(node: &NodeId, alloc: &AllocId) -> String {
    format!("rabble/node/{node}/alloc/{alloc}")
}

pub fn proxy(node: &NodeId) -> String {
    format!("rabble/node/{node}/proxy")
}
pub fn logs_request(node: &NodeId) -> String {
    format!("rabble/node/{node}/logs")
}
/// `session` must pass [`crate::logs::valid_session`].
pub fn logs(node: &NodeId, session: &str) -> String {
    format!("rabble/node/{node}/logs/{session}")
}

/// `lane` must pass [`crate::routes::valid_lane`].
pub fn certs(node: &NodeId, lane: &str) -> String {
    format!("rabble/node/{node}/certs/{lane}")
}
pub fn templates(node: &NodeId, alloc: &AllocId) -> String {
    format!("rabble/node/{node}/templates/{alloc}")
}
/// Every allocation's rendered templates for one node.
pub fn all_templates(node: &NodeId) -> String {
    format!("rabble/node/{node}/templates/+")
}
/// Every lane's certificates for one node.
pub fn all_certs(node: &NodeId) -> String {
    format!("rabble/node/{node}/certs/+")
}

/// A KV key the operator marked public (the key as is: `/` makes topic levels).
pub fn kv(key: &str) -> String {
    format!("rabble/kv/{key}")
}

/// A node at a glance, as the hub sees it (`crate::summary::NodeSummary`).
pub fn node_summary(node: &NodeId) -> String {
    format!("rabble/hub/nodes/{node}")
}
/// Every node's summary.
pub const ALL_NODE_SUMMARIES: &str = "rabble/hub/nodes/+";

/// A firing alert, by its fingerprint (16 hex digits), retained while it fires and is sent.
pub fn alert(fingerprint: &str) -> String {
    format!("rabble/alerts/{fingerprint}")
}
/// Every firing alert.
pub const ALL_ALERTS: &str = "rabble/alerts/+";

/// Whether `f` is an alert's fingerprint: 16 lowercase hex digits.
pub fn valid_fingerprint(f: &str) -> bool {
    f.len() == 16 && f.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The DNS zone's settings and names (`crate::dns::ZoneMeta`).
pub const DNS_ZONE: &str = "rabble/hub/dns/zone";
/// Every service's DNS records.
pub const ALL_DNS_SERVICES: &str = "rabble/hub/dns/service/+";
/// Every node's DNS records.
pub const ALL_DNS_NODES: &str = "rabble/hub/dns/node/+";
/// `name` must pass [`crate::dns::valid_label`].
pub fn dns_service(name: &str) -> String {
    format!("rabble/hub/dns/service/{name}")
}
/// `name` must pass [`crate::dns::valid_label`].
pub fn dns_node(name: &str) -> String {
    format!("rabble/hub/dns/node/{name}")
}

/// The client id prefix of agents: `rabble-agent-<node>`.
pub const AGENT_CLIENT_PREFIX: &str = "rabble-agent-";

/// A parsed Rabble topic: every topic someone subscribes to by name. The hub's outputs
/// that only people and tools read (alerts, node summaries) are not parsed here — the
/// agent's copy of this parser stays small — but have a [`Kind`] all the same
/// ([`policy::kind_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    HubStatus,
    Routes(String),
    NodeStatus(NodeId),
    NodeFacts(NodeId),
    NodeHeartbeat(NodeId),
    NodeManifest(NodeId),
    Service(NodeId, TopicId),
    Check(NodeId, TopicId),
    Assignments(NodeId),
    Alloc(NodeId, AllocId),
    LogsRequest(NodeId),
    Logs(NodeId, String),
    Proxy(NodeId),
    Certs(NodeId, String),
    Templates(NodeId, AllocId),
    Kv(String),
    DnsZone,
    DnsService(String),
    DnsNode(String),
}

/// Why a topic is not one of Rabble's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic {topic:?} is not a Rabble topic: {reason}")]
pub struct TopicError {
    pub topic: String,
    pub reason: &'static str,
}

impl Topic {
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        let err = |reason| TopicError { topic: topic.to_owned(), reason };
        let mut parts = topic.split('/');
        if parts.next() != Some(ROOT) {
            return Err(err("not under rabble/"));
        }
        let rest: Vec<&str> = parts.collect();
        match rest.as_slice() {
            ["hub", "status"] => Ok(Topic::HubStatus),
            ["hub", "routes", lane] if crate::routes::valid_lane(lane) => Ok(Topic::Routes((*lane).to_owned())),
            ["kv", ..] if rest.len() > 1 => Ok(Topic::Kv(rest[1..].join("/"))),
            ["hub", "dns", "zone"] => Ok(Topic::DnsZone),
            ["hub", "dns", "service", name] if crate::dns::valid_label(name) => {
                Ok(Topic::DnsService((*name).to_owned()))
            }
            ["hub", "dns", "node", name] if crate::dns::valid_label(name) => Ok(Topic::DnsNode((*name).to_owned())),
            ["node", node, tail @ ..] => {
                let node = NodeId::new(*node).map_err(|_| err("bad node id"))?;
                match tail {
                    ["status"] => Ok(Topic::NodeStatus(node)),
                    ["facts"] => Ok(Topic::NodeFacts(node)),
                    ["heartbeat"] => Ok(Topic::NodeHeartbeat(node)),
                    ["manifest"] => Ok(Topic::NodeManifest(node)),
                    ["service", id] => {
                        let id = TopicId::new(*id).map_err(|_| err("bad service id"))?;
                        Ok(Topic::Service(node, id))
                    }
                    ["check", id] => {
                        let id = TopicId::new(*id).map_err(|_| err("bad check id"))?;
                        Ok(Topic::Check(node, id))
                    }
                    ["assignments"] => Ok(Topic::Assignments(node)),
                    ["alloc", id] => {
                        let id = AllocId::new(*id).map_err(|_| err("bad allocation id"))?;
                        Ok(Topic::Alloc(node, id))
                    }
                    ["logs"] => Ok(Topic::LogsRequest(node)),
                    ["proxy"] => Ok(Topic::Proxy(node)),
                    ["logs", s] if crate::logs::valid_session(s) => Ok(Topic::Logs(node, (*s).to_owned())),
                    ["logs", _] => Err(err("bad logs session")),
                    ["certs", lane] if crate::routes::valid_lane(lane) => Ok(Topic::Certs(node, (*lane).to_owned())),
                    ["certs", _] => Err(err("bad lane name")),
                    ["templates", id] => {
                        let id = AllocId::new(*id).map_err(|_| err("bad allocation id"))?;
                        Ok(Topic::Templates(node, id))
                    }
                    _ => Err(err("unknown node topic")),
                }
            }
            _ => Err(err("unknown topic")),
        }
    }

    /// What kind of topic this is: [`Kind::policy`] says who publishes and reads it.
    pub fn kind(&self) -> Kind {
        match self {
            Topic::HubStatus => Kind::HubStatus,
            Topic::Routes(_) => Kind::Routes,
            Topic::NodeStatus(_) => Kind::NodeStatus,
            Topic::NodeFacts(_) => Kind::NodeFacts,
            Topic::NodeHeartbeat(_) => Kind::NodeHeartbeat,
            Topic::NodeManifest(_) => Kind::NodeManifest,
            Topic::Service(..) => Kind::Service,
            Topic::Check(..) => Kind::Check,
            Topic::Assignments(_) => Kind::Assignments,
            Topic::Alloc(..) => Kind::Alloc,
            Topic::LogsRequest(_) => Kind::LogsRequest,
            Topic::Logs(..) => Kind::Logs,
            Topic::Proxy(_) => Kind::Proxy,
            Topic::Certs(..) => Kind::Certs,
            Topic::Templates(..) => Kind::Templates,
            Topic::Kv(_) => Kind::Kv,
            Topic::DnsZone => Kind::DnsZone,
            Topic::DnsService(_) => Kind::DnsService,
            Topic::DnsNode(_) => Kind::DnsNode,
        }
    }

    /// The node the topic belongs to, if any.
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Topic::HubStatus
            | Topic::Routes(_)
            | Topic::Kv(_)
            | Topic::DnsZone
            | Topic::DnsService(_)
            | Topic::DnsNode(_) => None,
            Topic::NodeStatus(n)
            | Topic::NodeFacts(n)
            | Topic::NodeHeartbeat(n)
            | Topic::NodeManifest(n)
            | Topic::Service(n, _)
            | Topic::Check(n, _)
            | Topic::Assignments(n)
            | Topic::Alloc(n, _)
            | Topic::LogsRequest(n)
            | Topic::Logs(n, _)
            | Topic::Proxy(n)
            | Topic::Certs(n, _)
            | Topic::Templates(n, _) => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_parser_agree() {
        let n = NodeId::new("pi-3").unwrap();
        let s = TopicId::new("web").unwrap();
        let cases = [
            (node_status(&n), Topic::NodeStatus(n.clone())),
            (node_facts(&n), Topic::NodeFacts(n.clone())),
            (node_heartbeat(&n), Topic::NodeHeartbeat(n.clone())),
            (node_manifest(&n), Topic::NodeManifest(n.clone())),
            (service(&n, &s), Topic::Service(n.clone(), s.clone())),
            (check(&n, &s), Topic::Check(n.clone(), s.clone())),
            (assignments(&n), Topic::Assignments(n.clone())),
            (alloc(&n, &AllocId::new("00ff").unwrap()), Topic::Alloc(n.clone(), AllocId::new("00ff").unwrap())),
            (HUB_STATUS.to_owned(), Topic::HubStatus),
            (routes("routing"), Topic::Routes("routing".into())),
            (logs_request(&n), Topic::LogsRequest(n.clone())),
            (proxy(&n), Topic::Proxy(n.clone())),
            (logs(&n, "9f"), Topic::Logs(n.clone(), "9f".into())),
            (certs(&n, "ingress"), Topic::Certs(n.clone(), "ingress".into())),
            (templates(&n, &AllocId::new("0a").unwrap()), Topic::Templates(n.clone(), AllocId::new("0a").unwrap())),
            (kv("public/motd"), Topic::Kv("public/motd".into())),
            (DNS_ZONE.to_owned(), Topic::DnsZone),
            (dns_service("web"), Topic::DnsService("web".into())),
            (dns_node("pi-3"), Topic::DnsNode("pi-3".into())),
        ];
        for (t, want) in cases {
            assert_eq!(Topic::parse(&t).unwrap(), want, "{t}");
            let filter = want.kind().policy().filter(None);
            assert!(policy::covers(&filter, &t), "{t} is not matched by its policy's {filter}");
        }
    }

    #[test]
    fn parser_rejects_foreign_and_malformed_topics() {
        for t in [
            "",
            "rabble",
            "homeassistant/status",
            "rabble/node",
            "rabble/node/Pi3/facts",
            "rabble/node/pi3/facts/extra",
            "rabble/node/pi3/service",
            "rabble/node/pi3/service/a/b",
            "rabble/node/pi3/check/UPPER",
            "rabble/hub/other",
            "rabble/node/pi3/logs/XYZ",
            "rabble/node/pi3/logs/1/2",
            "rabble/hub/dns/service/Web",
            "rabble/hub/dns/node/a/b",
        ] {
            assert!(Topic::parse(t).is_err(), "{t} should be rejected");
        }
    }
}
