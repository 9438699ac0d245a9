//! Dispatch: tells each node what to run. After every commit it computes each node's
//! assignment set (pure: [`assignments`]), and for every node whose set changed it
//! publishes the set, signed with the hub's key (`sign.rs`), retained on
//! `rabble/node/<node>/assignments`. Retained, so an agent that (re)connects gets its
//! work at once, and keeps running it while the hub is away.

pub mod sign;

use crate::catalog::Catalog;
use rabble_shared::alloc::DesiredStatus;
use rabble_shared::assign::{Assignment, Assignments, MAX_ASSIGNMENTS, Signed};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, msg, topic};
use rumqttc::{AsyncClient, QoS};
use sign::SigningKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The allocations `node` should run now, each with its group's spec at the version it
/// runs (from the job's history, else the current one).
pub fn assignments(catalog: &Catalog, node: &NodeId) -> Vec<Assignment> {
    let mut out = Vec::new();
    for a in catalog.work.allocs.values() {
        if &a.node != node || a.desired != DesiredStatus::Run || a.client_status.is_terminal() {
            continue;
        }
        let Some(job) = catalog.work.jobs.get(&a.job_id) else { continue };
        let spec = catalog.work.history.get(&(a.job_id.clone(), a.job_version)).unwrap_or(&job.spec);
        let Some(g) = spec
            .groups
            .iter()
            .find(|g| g.name == a.group)
            .or_else(|| job.spec.groups.iter().find(|g| g.name == a.group))
        else {
            continue;
        };
        out.push(Assignment {
            alloc: a.id.clone(),
            name: a.name.clone(),
            job_id: a.job_id.clone(),
            job_version: a.job_version,
            kind: spec.kind,
            group: a.group.clone(),
            index: a.index,
            ports: a.ports.clone(),
            network_mode: g.network.mode.clone(),
            services: g.services.clone(),
            tasks: g.tasks.clone(),
            volumes: g.volumes.clone(),
        });
    }
    out
}

/// Builds and signs one node's message.
pub fn signed(key: &SigningKey, node: &NodeId, seq: u64, allocs: Vec<Assignment>) -> Signed {
    let body = Assignments { node: node.clone(), seq, issued_ms: now_ms(), allocs };
    let body = serde_json::to_string(&body).unwrap_or_default();
    Signed { sig: key.sign(body.as_bytes()), body }
}

/// The dispatch task.
pub struct Dispatch {
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub key: Arc<SigningKey>,
    /// Counts the hub's connections to the broker: after a reconnect everything is
    /// published again (a restarted broker may have lost its retained messages).
    pub connects: watch::Receiver<u64>,
}

impl Dispatch {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        // What each node was last sent (the allocations' JSON): a change re-publishes.
        let mut sent: BTreeMap<NodeId, String> = BTreeMap::new();
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            for node in catalog.nodes.keys() {
                let allocs = assignments(&catalog, node);
                let fingerprint = serde_json::to_string(&allocs).unwrap_or_default();
                if sent.get(node) == Some(&fingerprint) {
                    continue;
                }
                let payload = msg::encode(&signed(&self.key, node, catalog.index, allocs));
                if payload.len() > MAX_ASSIGNMENTS {
                    tracing::error!(node = %node, bytes = payload.len(), "this node's assignments are too large to send");
                    continue;
                }
                match self.client.try_publish(topic::assignments(node), QoS::AtLeastOnce, true, payload) {
                    Ok(()) => {
                        tracing::debug!(node = %node, seq = catalog.index, "assignments published");
                        sent.insert(node.clone(), fingerprint);
                    }
                    // The next commit tries again.
                    Err(e) => tracing::warn!(node = %node, error = %e, "could not queue assignments"),
                }
            }
            sent.retain(|n, _| catalog.nodes.contains_key(n));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                changed = self.snapshot.changed() => if changed.is_err() { return Err("the catalog snapshot is gone") },
                changed = self.connects.changed() => match changed {
                    Ok(()) => sent.clear(),
                    Err(_) => return Err("the hub's MQTT session is gone"),
                },
            }
        }
    }
}
