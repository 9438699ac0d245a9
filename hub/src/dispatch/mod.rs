//! Dispatch: tells each node what to run. After every commit it computes each node's
//! assignment set (pure: [`assignments`]), and for every node whose set changed it
//! publishes the set, signed with the hub's key (`sign.rs`), retained on
//! `rabble/node/<node>/assignments` (through [`crate::retained`]). Retained, so an agent that (re)connects gets its
//! work at once, and keeps running it while the hub is away.

pub mod sign;

use crate::catalog::Catalog;
use crate::retained::{self, Retained, Want};
pub use rabble_core::assign::assignments;
use rabble_shared::assign::{Assignment, Assignments, MAX_ASSIGNMENTS, Signed};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, topic};
use rumqttc::AsyncClient;
use sign::SigningKey;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
