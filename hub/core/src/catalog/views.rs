//! The API's views of the catalog (`rabble nodes`, `rabble services`), built from a
//! snapshot with the one health rule of `health.rs`.

use super::health;
use super::state::Catalog;
use rabble_shared::api::{InstanceView, NodeView, ServiceView};
use std::collections::BTreeMap;

impl Catalog {
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
                eligible: n.eligible,
                drain_deadline_ms: n.drain_deadline_ms,
            })
            .collect()
    }

    /// Every service with its instances, sorted by name, then node, then instance key.
    pub fn service_views(&self) -> Vec<ServiceView> {
        let mut by_name: BTreeMap<&str, Vec<InstanceView>> = BTreeMap::new();
        for (node_id, node) in &self.nodes {
            for (key, reg) in &node.services {
                by_name.entry(reg.name.as_str()).or_default().push(InstanceView {
                    node: node_id.clone(),
                    node_status: node.status,
                    key: key.clone(),
                    id: reg.id.clone(),
                    name: reg.name.clone(),
                    tags: reg.tags.clone(),
                    address: health::address(node, reg).unwrap_or_default().to_owned(),
                    port: reg.port,
                    meta: reg.meta.clone(),
                    status: health::status(node, reg),
                    checks: health::checks(node, reg).cloned().collect(),
                });
            }
        }
        by_name.into_iter().map(|(name, instances)| ServiceView { name: name.to_owned(), instances }).collect()
    }
}
