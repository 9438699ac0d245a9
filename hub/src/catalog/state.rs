//! The catalog's in-memory state and the rules that change it. Pure: no IO, no
//! clock reads (callers pass time in), so every rule is unit-tested directly.

use rabble_shared::api::{InstanceView, NodeStatus, NodeView, ServiceView};
use rabble_shared::msg::{CheckState, Heartbeat, Manifest, NodeFacts, ServiceRegistration};
use rabble_shared::{NodeId, Status, TopicId};
use std::collections::BTreeMap;

/// A validated change, as ingest hands it to the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Online(NodeId),
    Offline(NodeId),
    Facts(NodeId, NodeFacts),
    Heartbeat(NodeId, Heartbeat),
    Manifest(NodeId, Manifest),
    Service(NodeId, TopicId, Option<ServiceRegistration>),
    Check(NodeId, TopicId, Option<CheckState>),
    /// The hub's own verdict: no heartbeat for the configured TTL.
    HeartbeatTimeout(NodeId),
}

impl Update {
    pub fn node(&self) -> &NodeId {
        match self {
            Update::Online(n)
            | Update::Offline(n)
            | Update::Facts(n, _)
            | Update::Heartbeat(n, _)
            | Update::Manifest(n, _)
            | Update::Service(n, ..)
            | Update::Check(n, ..)
            | Update::HeartbeatTimeout(n) => n,
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
}

impl Node {
    fn new() -> Node {
        Node {
            status: NodeStatus::Up,
            reason: "online".into(),
            facts: None,
            services: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }
}

/// A durable key the writer must persist after a change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dirty {
    Node(NodeId),
    Service(NodeId, TopicId),
    Check(NodeId, TopicId),
}

/// The outcome of applying an update: which durable keys changed, and a summary of
/// each change for `rabble watch`.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub dirty: Vec<Dirty>,
    pub summaries: Vec<String>,
}

/// The whole catalog. `index` moves on every durable change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub nodes: BTreeMap<NodeId, Node>,
    pub index: u64,
}

impl Catalog {
    /// Applies one update. Heartbeats are not durable and change nothing here beyond
    /// bringing a down node back up.
    pub fn apply(&mut self, u: Update) -> Applied {
        let mut out = Applied::default();
        let id = u.node().clone();
        let existed = self.nodes.contains_key(&id);
        if matches!(u, Update::HeartbeatTimeout(_)) && !existed {
            return out;
        }
        let node = self.nodes.entry(id.clone()).or_insert_with(Node::new);
        if !existed {
            out.dirty.push(Dirty::Node(id.clone()));
            out.summaries.push(format!("node {id} joined"));
        }
        let set_status = |node: &mut Node, out: &mut Applied, status: NodeStatus, reason: &str| {
            if node.status != status {
                node.status = status;
                node.reason = reason.to_owned();
                out.dirty.push(Dirty::Node(id.clone()));
                let word = if status == NodeStatus::Up { "up" } else { "down" };
                out.summaries.push(format!("node {id} {word} ({reason})"));
            }
        };
        match u {
            Update::Online(_) => set_status(node, &mut out, NodeStatus::Up, "online"),
            Update::Heartbeat(..) => set_status(node, &mut out, NodeStatus::Up, "heartbeat"),
            Update::Offline(_) => set_status(node, &mut out, NodeStatus::Down, "offline"),
            Update::HeartbeatTimeout(_) => set_status(node, &mut out, NodeStatus::Down, "heartbeat-timeout"),
            Update::Facts(_, f) => {
                if node.facts.as_ref() != Some(&f) {
                    node.facts = Some(f);
                    out.dirty.push(Dirty::Node(id.clone()));
                    out.summaries.push(format!("node {id} facts updated"));
                }
            }
            Update::Service(_, key, reg) => match reg {
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
            },
            Update::Check(_, key, st) => match st {
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
            },
            Update::Manifest(_, m) => {
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
        }
        out
    }

    /// Views for the API, sorted by node id.
    pub fn node_views(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .map(|(id, n)| NodeView {
                id: id.clone(),
                status: n.status,
                reason: n.reason.clone(),
                facts: n.facts.clone(),
                heartbeat: None,
                last_seen_ago_ms: None,
                services: n.services.len(),
            })
            .collect()
    }

    /// Every service with its instances, sorted by name, then node, then instance key.
    pub fn service_views(&self) -> Vec<ServiceView> {
        let mut by_name: BTreeMap<&str, Vec<InstanceView>> = BTreeMap::new();
        for (node_id, node) in &self.nodes {
            let advertise = node.facts.as_ref().map(|f| f.advertise.as_str()).unwrap_or_default();
            for (key, reg) in &node.services {
                let checks: Vec<CheckState> = node
                    .checks
                    .values()
                    .filter(|c| c.service_id.as_deref() == Some(reg.id.as_str()) || c.service_id.is_none())
                    .cloned()
                    .collect();
                let mut status = Status::aggregate(checks.iter().map(|c| c.status));
                if node.status == NodeStatus::Down {
                    status = status.max(Status::Critical);
                }
                by_name.entry(reg.name.as_str()).or_default().push(InstanceView {
                    node: node_id.clone(),
                    node_status: node.status,
                    key: key.clone(),
                    id: reg.id.clone(),
                    name: reg.name.clone(),
                    tags: reg.tags.clone(),
                    address: reg.address.clone().unwrap_or_else(|| advertise.to_owned()),
                    port: reg.port,
                    meta: reg.meta.clone(),
                    status,
                    checks,
                });
            }
        }
        by_name.into_iter().map(|(name, instances)| ServiceView { name: name.to_owned(), instances }).collect()
    }

    /// How many distinct service names the catalog has.
    pub fn service_count(&self) -> usize {
        let names: std::collections::BTreeSet<&str> =
            self.nodes.values().flat_map(|n| n.services.values().map(|r| r.name.as_str())).collect();
        names.len()
    }

    pub fn instance_count(&self) -> usize {
        self.nodes.values().map(|n| n.services.len()).sum()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
