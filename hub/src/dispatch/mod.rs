//! Dispatch: tells each node what to run. After every commit it computes each node's
//! assignment set (pure: [`assignments`]), and for every node whose set changed it
//! publishes the set, signed with the hub's key (`sign.rs`), retained on
//! `rabble/node/<node>/assignments` (through [`crate::retained`]). Retained, so an agent that (re)connects gets its
//! work at once, and keeps running it while the hub is away.

pub mod sign;

use crate::catalog::Catalog;
use crate::retained::{self, Retained, Want};
use rabble_shared::alloc::DesiredStatus;
use rabble_shared::assign::{Assignment, Assignments, MAX_ASSIGNMENTS, Signed};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, topic};
use rumqttc::AsyncClient;
use sign::SigningKey;
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
        let mut out = Retained::new(self.client.clone(), MAX_ASSIGNMENTS);
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            // What each node should hold; its allocations' JSON is the fingerprint (the
            // sequence number and time of a message that would change nothing are not).
            let want = catalog.nodes.keys().map(|node| {
                let allocs = assignments(&catalog, node);
                let fingerprint = retained::fingerprint(serde_json::to_string(&allocs).unwrap_or_default().as_bytes());
                let make = || retained::open(&signed(&self.key, node, catalog.index, allocs));
                (topic::assignments(node), Want::Publish { fingerprint, make })
            });
            out.sync(want).await;
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                changed = self.snapshot.changed() => if changed.is_err() { return Err("the catalog snapshot is gone") },
                changed = self.connects.changed() => match changed {
                    Ok(()) => out.reconnected(),
                    Err(_) => return Err("the hub's MQTT session is gone"),
                },
                _ = retained::retry(retry) => {}
            }
        }
    }
}
