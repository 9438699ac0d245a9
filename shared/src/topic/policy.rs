//! The topic policy: for every kind of topic, who publishes it, whether it is retained, its
//! QoS and who may read it. Declared once here; the embedded broker's ACL asks
//! [`node_may_publish`] / [`node_may_subscribe`] / [`observer_may_subscribe`], the shipped
//! Mosquitto `acl_file` is [`mosquitto_acl`], and docs/mqtt.md's table is [`markdown_table`]
//! (both files are checked against these functions by `shared/tests/policy.rs`).
//!
//! The hub reads and writes every topic. Observers (`rabble-hub node add <name> --observer`)
//! read every topic and publish none. A node publishes only topics that name it and whose
//! publisher is [`Publisher::Node`], and reads only what [`Readers`] grants it.

use crate::NodeId;

/// Who publishes a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// The hub alone.
    Hub,
    /// The node the topic names (its agent).
    Node,
}

/// Who may read a topic, besides the hub and observers (who read everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// No node.
    Hub,
    /// The node the topic names.
    OwnNode,
    /// Every node.
    Nodes,
}

/// Every kind of Rabble topic (a [`super::Topic`] without its ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    HubStatus,
    Routes,
    NodeStatus,
    NodeFacts,
    NodeHeartbeat,
    NodeManifest,
    Service,
    Check,
    Assignments,
    Alloc,
    Proxy,
    LogsRequest,
    Logs,
    Certs,
    Templates,
    Kv,
    DnsZone,
    DnsService,
    DnsNode,
    Alert,
    NodeSummary,
}

/// One kind of topic, declared.
#[derive(Debug)]
pub struct Policy {
    pub kind: Kind,
    /// The topic with its variable levels named: `<node>` is the node's id, `<x>` any one
    /// level, `<x..>` one or more levels.
    pub pattern: &'static str,
    pub publisher: Publisher,
    pub retained: bool,
    /// 0 or 1.
    pub qos: u8,
    pub readers: Readers,
    /// What the payload is, for the docs.
    pub payload: &'static str,
}

const fn p(
    kind: Kind,
    pattern: &'static str,
    publisher: Publisher,
    retained: bool,
    qos: u8,
    readers: Readers,
    payload: &'static str,
) -> Policy {
    Policy { kind, pattern, publisher, retained, qos, readers, payload }
}

use Kind as K;
use Publisher::{Hub as ByHub, Node as ByNode};
use Readers::{Hub as HubOnly, Nodes, OwnNode};

/// The policy of every kind, in [`Kind`]'s order (so `POLICY[kind as usize].kind == kind`).
pub const POLICY: [Policy; 21] = [
    p(K::HubStatus, "rabble/hub/status", ByHub, true, 1, Nodes, "`online` / `offline` (the hub's Will)"),
    p(
        K::Routes,
        "rabble/hub/routes/<lane>",
        ByHub,
        true,
        1,
        Nodes,
        "JSON `LaneTable`: the lane's routers, services, middlewares and problems",
    ),
    p(
        K::NodeStatus,
        "rabble/node/<node>/status",
        ByNode,
        true,
        1,
        HubOnly,
        "`online` / `offline` (the agent's Will; re-published after every connect)",
    ),
    p(
        K::NodeFacts,
        "rabble/node/<node>/facts",
        ByNode,
        true,
        1,
        HubOnly,
        "JSON `NodeFacts`: hostname, arch, OS, kernel, CPUs, memory, disks, addresses, advertise, version, class, \
         datacenter, meta, drivers",
    ),
    p(
        K::NodeHeartbeat,
        "rabble/node/<node>/heartbeat",
        ByNode,
        false,
        0,
        HubOnly,
        "JSON `Heartbeat`: CPU %, load, memory, disks, uptime, SoC temperature, Pi throttling",
    ),
    p(
        K::NodeManifest,
        "rabble/node/<node>/manifest",
        ByNode,
        true,
        1,
        HubOnly,
        "JSON `Manifest`: every service and check id the node has now",
    ),
    p(
        K::Service,
        "rabble/node/<node>/service/<id>",
        ByNode,
        true,
        1,
        HubOnly,
        "JSON `ServiceRegistration`; empty deregisters",
    ),
    p(K::Check, "rabble/node/<node>/check/<id>", ByNode, true, 1, HubOnly, "JSON `CheckState`; empty removes"),
    p(
        K::Assignments,
        "rabble/node/<node>/assignments",
        ByHub,
        true,
        1,
        OwnNode,
        "JSON `Signed` `Assignments`: the allocations the node runs, ed25519-signed by the hub",
    ),
    p(
        K::Alloc,
        "rabble/node/<node>/alloc/<alloc>",
        ByNode,
        true,
        1,
        HubOnly,
        "JSON `AllocState`: an allocation's status and its tasks'; empty clears",
    ),
    p(
        K::Proxy,
        "rabble/node/<node>/proxy",
        ByNode,
        false,
        0,
        HubOnly,
        "JSON `ProxyStats`: the lane proxy's counters by lane and router, every 5 s while they change",
    ),
    p(
        K::LogsRequest,
        "rabble/node/<node>/logs",
        ByHub,
        false,
        1,
        OwnNode,
        "JSON `SignedRequest`: a `LogsRequest` for one task's output (`rabble alloc logs`), ed25519-signed",
    ),
    p(
        K::Logs,
        "rabble/node/<node>/logs/<session>",
        ByNode,
        false,
        0,
        HubOnly,
        "JSON `LogChunk`: output for that request (`seq`, `data`, `skipped`, `eof`, `error`)",
    ),
    p(
        K::Certs,
        "rabble/node/<node>/certs/<lane>",
        ByHub,
        true,
        1,
        OwnNode,
        "JSON `CertMessage`: the lane's ACME certificates for the node, sealed with a key from its token; empty: none",
    ),
    p(
        K::Templates,
        "rabble/node/<node>/templates/<alloc>",
        ByHub,
        true,
        1,
        OwnNode,
        "JSON `Signed` `RenderedMessage`: an allocation's rendered template files, sealed for the node; empty: none",
    ),
    p(
        K::Kv,
        "rabble/kv/<key..>",
        ByHub,
        true,
        1,
        HubOnly,
        "a KV value under a `[kv] public` prefix, raw; empty: deleted",
    ),
    p(
        K::DnsZone,
        "rabble/hub/dns/zone",
        ByHub,
        true,
        0,
        Nodes,
        "JSON `ZoneMeta`: the DNS domain, TTLs, datacenters and the names the zone holds (every agent answers DNS; \
         QoS 0: a thousand services must not fill the hub's in-flight window, and a lost one comes back retained)",
    ),
    p(
        K::DnsService,
        "rabble/hub/dns/service/<name>",
        ByHub,
        true,
        0,
        Nodes,
        "JSON `ServiceRecords`: a service's healthy instances (address, port, node, tags); empty: none",
    ),
    p(
        K::DnsNode,
        "rabble/hub/dns/node/<name>",
        ByHub,
        true,
        0,
        Nodes,
        "JSON `NodeRecords`: a node's addresses and meta (`<node>.node.<domain>`); empty: gone",
    ),
    p(
        K::Alert,
        "rabble/alerts/<fingerprint>",
        ByHub,
        true,
        1,
        HubOnly,
        "JSON `GettableAlert` (Alertmanager's v2 shape): an alert firing and sent (not silenced or inhibited), while \
         it fires, with an `[[alert.receiver]]` of kind `mqtt`; empty: resolved",
    ),
    p(
        K::NodeSummary,
        "rabble/hub/nodes/<node>",
        ByHub,
        true,
        1,
        HubOnly,
        "JSON `NodeSummary`: a node at a glance as the hub sees it (up/down, CPU, memory, disk, temperature, uptime, \
         throttling, running allocations, each service's health), when it changes; what Home Assistant's sensors \
         read; empty: forgotten",
    ),
];

impl Kind {
    pub fn policy(self) -> &'static Policy {
        &POLICY[self as usize]
    }
}

impl Policy {
    /// The MQTT filter matching every topic of this kind: `<node>` becomes `node` (or `+`),
    /// `<x>` becomes `+` and `<x..>` becomes `#`.
    pub fn filter(&self, node: Option<&str>) -> String {
        self.levels(node.unwrap_or("+"))
    }

    /// The pattern as Mosquitto's `acl_file` writes it (`%u`: the user name, which is the node id).
    pub fn mosquitto(&self) -> String {
        self.levels("%u")
    }

    fn levels(&self, node: &str) -> String {
        let out: Vec<&str> = self
            .pattern
            .split('/')
            .map(|level| match level {
                "<node>" => node,
                l if l.starts_with('<') && l.ends_with("..>") => "#",
                l if l.starts_with('<') => "+",
                l => l,
            })
            .collect();
        out.join("/")
    }
}

/// The kind of a topic: a [`super::Topic`]'s, or one of the hub's outputs nobody
/// subscribes to by name (alerts, node summaries), kept out of `Topic` so the agent's
/// parser stays small.
pub fn kind_of(topic: &str) -> Option<Kind> {
    if let Ok(t) = super::Topic::parse(topic) {
        return Some(t.kind());
    }
    match topic.split('/').collect::<Vec<_>>().as_slice() {
        ["rabble", "alerts", f] if super::valid_fingerprint(f) => Some(Kind::Alert),
        ["rabble", "hub", "nodes", n] if NodeId::new(*n).is_ok() => Some(Kind::NodeSummary),
        _ => None,
    }
}

/// Whether every topic `filter` matches is also matched by `allowed` (both MQTT filters).
pub fn covers(allowed: &str, filter: &str) -> bool {
    let mut a = allowed.split('/');
    let mut f = filter.split('/');
    loop {
        match (a.next(), f.next()) {
            (Some("#"), Some(_)) => return true,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(x), Some(y)) if x == y && y != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether a node may publish to `topic`: a Rabble topic that names it, of a kind nodes publish.
pub fn node_may_publish(node: &NodeId, topic: &str) -> bool {
    super::Topic::parse(topic).is_ok_and(|t| t.kind().policy().publisher == Publisher::Node && t.node() == Some(node))
}

/// Whether a node may subscribe to `filter`: it matches only topics the node may read.
pub fn node_may_subscribe(node: &NodeId, filter: &str) -> bool {
    POLICY.iter().any(|p| match p.readers {
        Readers::Hub => false,
        Readers::OwnNode => covers(&p.filter(Some(node.as_str())), filter),
        Readers::Nodes => covers(&p.filter(None), filter),
    })
}

/// Home Assistant's discovery prefix (its default; hub.toml's `[homeassistant]
/// discovery_prefix` sets another): an observer — Home Assistant logs in as one — may read
/// it, and say its own status there (its birth message and Will).
pub const HA_PREFIX: &str = "homeassistant";

/// Whether an observer may subscribe to `filter`: anything under `rabble/` or Home
/// Assistant's discovery prefix `ha_prefix`.
pub fn observer_may_subscribe(filter: &str, ha_prefix: &str) -> bool {
    covers(super::ALL, filter) || covers(&format!("{ha_prefix}/#"), filter)
}

/// Whether an observer may publish to `topic`: only Home Assistant's status under
/// `ha_prefix` (its birth message and Will); nothing of Rabble's.
pub fn observer_may_publish(topic: &str, ha_prefix: &str) -> bool {
    topic.strip_prefix(ha_prefix) == Some("/status")
}

/// The user name the hub logs in with on an external broker, as the shipped files write it.
pub const HUB_USER: &str = "rabble-hub";

/// The `acl_file` for an external Mosquitto (images/etc/mosquitto-acl.conf), from the policy.
pub fn mosquitto_acl() -> String {
    let mut out = String::from(
        "# Rabble's topic ACL for an external Mosquitto (mosquitto.conf: acl_file /etc/mosquitto/rabble-acl.conf).\n\
         # Generated from shared/src/topic/policy.rs (a test fails when the two differ; regenerate with\n\
         # RABBLE_UPDATE_GOLDEN=1 cargo test -p rabble-shared --test policy).\n\
         #\n\
         # Each node logs in with its node id as user name (its token_file holds the password): it may\n\
         # write only its own state and read only what the hub sends it. The hub reads and writes everything.\n\
         # Observers: `user <name>` + `topic read rabble/#`, with a name that is no node id (one with a capital\n\
         # letter or a dot, e.g. `Home.Assistant`), so that the node patterns below give them nothing to write.\n\
         # Home Assistant also needs `topic read homeassistant/#` and `topic write homeassistant/status`.\n",
    );
    out.push_str(&format!(
        "user {HUB_USER}\ntopic readwrite rabble/#\n# Home Assistant's device discovery ([homeassistant] in hub.toml).\n\
         topic readwrite {HA_PREFIX}/#\n\n# What a node publishes.\n"
    ));
    for p in POLICY.iter().filter(|p| p.publisher == Publisher::Node) {
        out.push_str(&format!("pattern write {}\n", p.mosquitto()));
    }
    out.push_str("\n# What a node reads.\n");
    for p in POLICY.iter().filter(|p| p.readers != Readers::Hub) {
        out.push_str(&format!("pattern read {}\n", p.mosquitto()));
    }
    out
}

/// docs/mqtt.md's table of topics, from the policy.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| topic | published by | retained | QoS | read by (besides hub and observers) | payload |\n\
         |---|---|---|---|---|---|\n",
    );
    for p in &POLICY {
        let by = match p.publisher {
            Publisher::Hub => "hub",
            Publisher::Node => "the node",
        };
        let readers = match p.readers {
            Readers::Hub => "—",
            Readers::OwnNode => "the node",
            Readers::Nodes => "every node",
        };
        let retained = if p.retained { "yes" } else { "no" };
        let pattern = p.pattern.replace("..>", ">");
        out.push_str(&format!("| `{pattern}` | {by} | {retained} | {} | {readers} | {} |\n", p.qos, p.payload));
    }
    out
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
