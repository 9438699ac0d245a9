//! A node's durable record and the rules that change it: availability, facts,
//! services, checks and the manifest that ends ghosts. Pure: no IO, no clock.

use super::state::{Applied, Dirty};
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::{CheckState, Heartbeat, Manifest, NodeFacts, ServiceRegistration};
use rabble_shared::{NodeId, TopicId};
use std::collections::BTreeMap;

/// The agent version an external node's facts carry (`/v1/catalog/register`).
pub const EXTERNAL: &str = "external (catalog/register)";

/// A validated change to one node, as ingest (or the writer's liveness tick) makes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NodeUpdate {
    Online,
    Offline,
    Facts(Box<NodeFacts>),
    Heartbeat(Heartbeat),
    Manifest(Manifest),
    Service(TopicId, Option<ServiceRegistration>),
    Check(TopicId, Option<CheckState>),
    /// The hub's own verdict: no heartbeat for the configured TTL.
    HeartbeatTimeout,
    /// `rabble node eligibility <node> enable|disable`.
    Eligibility(bool),
    /// `rabble node drain <node>`: `Some(deadline)` starts a drain (and makes the node
    /// ineligible), `None` ends it.
    Drain(Option<u64>),
    /// The node leaves the catalog with its services and checks (an external node
    /// deregistered through Consul's API).
    Forget,
}

impl NodeUpdate {
    /// Whether the node itself said this (over MQTT, or the Consul API for an external
    /// node), as opposed to the hub's verdict or an operator's command.
    pub fn is_from_node(&self) -> bool {
        match self {
            NodeUpdate::Online
            | NodeUpdate::Offline
            | NodeUpdate::Facts(_)
            | NodeUpdate::Heartbeat(_)
            | NodeUpdate::Manifest(_)
            | NodeUpdate::Service(..)
            | NodeUpdate::Check(..) => true,
            NodeUpdate::HeartbeatTimeout | NodeUpdate::Eligibility(_) | NodeUpdate::Drain(_) | NodeUpdate::Forget => {
                false
            }
        }
    }
}

/// What one node is known to have. Everything here is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub status: NodeStatus,
    pub reason: String,
    pub facts: Option<NodeFacts>,
    pub services: BTreeMap<TopicId, ServiceRegistration>,
    pub checks: BTreeMap<TopicId, CheckState>,
    /// Whether the scheduler may place new work here.
    pub eligible: bool,
    /// A drain in progress, with its deadline (ms since the epoch).
    pub drain_deadline_ms: Option<u64>,
    /// When the status last changed (ms since the epoch), stamped by the writer; not
    /// durable (0 after a restart: every node then gets a full heartbeat TTL anyway).
    pub status_since_ms: u64,
}

impl Node {
    /// A node registered through Consul's API rather than run by an agent: no
    /// heartbeats are expected from it.
    pub fn is_external(&self) -> bool {
        self.facts.as_ref().is_some_and(|f| f.agent_version == EXTERNAL)
    }

    pub fn new() -> Node {
        Node {
            status: NodeStatus::Up,
            reason: "online".into(),
            facts: None,
            services: BTreeMap::new(),
            checks: BTreeMap::new(),
            eligible: true,
            drain_deadline_ms: None,
            status_since_ms: 0,
        }
    }
}

impl Default for Node {
    fn default() -> Node {
        Node::new()
    }
}

/// Applies `u` to the node `id` of `nodes`. An unknown node is created by anything
/// but a heartbeat timeout; a heartbeat alone never makes a key dirty unless it
/// brings a down node back.
pub(super) fn apply(nodes: &mut BTreeMap<NodeId, Node>, id: NodeId, u: NodeUpdate) -> Applied {
    let mut out = Applied::default();
    if matches!(u, NodeUpdate::Forget) {
        if let Some(node) = nodes.remove(&id) {
            out.dirty.extend(node.services.keys().map(|k| Dirty::Service(id.clone(), k.clone())));
            out.dirty.extend(node.checks.keys().map(|k| Dirty::Check(id.clone(), k.clone())));
            out.dirty.push(Dirty::Node(id.clone()));
            out.summaries.push(format!("node {id} deregistered"));
        }
        return out;
    }
    let existed = nodes.contains_key(&id);
    // Nothing to time out or remove on a node the catalog does not hold (a forgotten
    // node's retained topics being cleared must not bring it back).
    if !existed && matches!(u, NodeUpdate::HeartbeatTimeout | NodeUpdate::Service(_, None) | NodeUpdate::Check(_, None))
    {
        return out;
    }
    let node = nodes.entry(id.clone()).or_default();
    if !existed {
        out.dirty.push(Dirty::Node(id.clone()));
        out.summaries.push(format!("node {id} joined"));
    }
    match u {
        NodeUpdate::Online => set_status(node, &id, &mut out, NodeStatus::Up, "online"),
        NodeUpdate::Heartbeat(_) => set_status(node, &id, &mut out, NodeStatus::Up, "heartbeat"),
        NodeUpdate::Offline => set_status(node, &id, &mut out, NodeStatus::Down, "offline"),
        NodeUpdate::HeartbeatTimeout => set_status(node, &id, &mut out, NodeStatus::Down, "heartbeat-timeout"),
        NodeUpdate::Facts(f) => {
            if node.facts.as_ref() != Some(&*f) {
                node.facts = Some(*f);
                out.dirty.push(Dirty::Node(id.clone()));
                out.summaries.push(format!("node {id} facts updated"));
            }
        }
        NodeUpdate::Service(key, reg) => service(node, &id, &mut out, key, reg),
        NodeUpdate::Check(key, st) => check(node, &id, &mut out, key, st),
        NodeUpdate::Manifest(m) => manifest(node, &id, &mut out, &m),
        NodeUpdate::Eligibility(e) => {
            if node.eligible != e || (e && node.drain_deadline_ms.is_some()) {
                node.eligible = e;
                if e {
                    node.drain_deadline_ms = None;
                }
                out.dirty.push(Dirty::Node(id.clone()));
                out.summaries.push(format!("node {id} {}", if e { "eligible" } else { "ineligible" }));
            }
        }
        NodeUpdate::Forget => {}
        NodeUpdate::Drain(deadline) => {
            if node.drain_deadline_ms != deadline {
                node.drain_deadline_ms = deadline;
                // Draining makes the node ineligible; cancelling a drain makes it eligible again.
                node.eligible = deadline.is_none();
                out.dirty.push(Dirty::Node(id.clone()));
                let what = if deadline.is_some() { "draining" } else { "drain ended" };
                out.summaries.push(format!("node {id} {what}"));
            }
        }
    }
    out
}

fn set_status(node: &mut Node, id: &NodeId, out: &mut Applied, status: NodeStatus, reason: &str) {
    if node.status != status {
        node.status = status;
        node.reason = reason.to_owned();
        out.dirty.push(Dirty::Node(id.clone()));
        let word = if status == NodeStatus::Up { "up" } else { "down" };
        out.summaries.push(format!("node {id} {word} ({reason})"));
    }
}

fn service(node: &mut Node, id: &NodeId, out: &mut Applied, key: TopicId, reg: Option<ServiceRegistration>) {
    match reg {
        Some(reg) if node.services.get(&key) != Some(&reg) => {
            out.summaries.push(format!("service {} registered on {id} ({key})", reg.name));
            node.services.insert(key.clone(), reg);
            out.dirty.push(Dirty::Service(id.clone(), key));
        }
        Some(_) => {}
        None => {
            if let Some(old) = node.services.remove(&key) {
                out.summaries.push(format!("service {} deregistered from {id} ({key})", old.name));
                out.dirty.push(Dirty::Service(id.clone(), key));
            }
        }
    }
}

fn check(node: &mut Node, id: &NodeId, out: &mut Applied, key: TopicId, st: Option<CheckState>) {
    match st {
        Some(st) if node.checks.get(&key) != Some(&st) => {
            let was = node.checks.get(&key).map(|c| c.status);
            if was != Some(st.status) {
                out.summaries.push(format!("check {} on {id}: {}", st.id, st.status));
            }
            node.checks.insert(key.clone(), st);
            out.dirty.push(Dirty::Check(id.clone(), key));
        }
        Some(_) => {}
        None => {
            if let Some(old) = node.checks.remove(&key) {
                out.summaries.push(format!("check {} on {id} removed", old.id));
                out.dirty.push(Dirty::Check(id.clone(), key));
            }
        }
    }
}

/// Whatever the node has that its manifest does not list is a ghost (a deregistration
/// lost while the hub was away): removed.
fn manifest(node: &mut Node, id: &NodeId, out: &mut Applied, m: &Manifest) {
    let ghosts: Vec<TopicId> = node.services.keys().filter(|k| !m.services.contains(k)).cloned().collect();
    for key in ghosts {
        if let Some(old) = node.services.remove(&key) {
            out.summaries.push(format!("service {} on {id} not in its manifest; removed", old.name));
        }
        out.dirty.push(Dirty::Service(id.clone(), key));
    }
    let ghosts: Vec<TopicId> = node.checks.keys().filter(|k| !m.checks.contains(k)).cloned().collect();
    for key in ghosts {
        node.checks.remove(&key);
        out.dirty.push(Dirty::Check(id.clone(), key));
    }
}

/// Removes the services an allocation registered on `node` (meta `alloc_id`), and
/// their checks.
pub(super) fn drop_alloc_services(node: &mut Node, id: &NodeId, alloc: &str) -> Applied {
    let mut out = Applied::default();
    let keys: Vec<TopicId> = node
        .services
        .iter()
        .filter(|(_, r)| r.meta.get("alloc_id").is_some_and(|a| a == alloc))
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        let Some(reg) = node.services.remove(&key) else { continue };
        out.summaries.push(format!("service {} on {id} removed with its allocation ({key})", reg.name));
        out.dirty.push(Dirty::Service(id.clone(), key));
        let checks: Vec<TopicId> = node
            .checks
            .iter()
            .filter(|(_, c)| c.service_id.as_deref() == Some(reg.id.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for c in checks {
            node.checks.remove(&c);
            out.dirty.push(Dirty::Check(id.clone(), c));
        }
    }
    out
}
