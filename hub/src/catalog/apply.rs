//! The applier: what makes a committed [`LogEntry`] real on this hub — the catalog in
//! memory, redb (one transaction, with the replication position when clustered), the
//! observers (DNS zone, route table), then the snapshot readers see, then events.
//!
//! A single hub's writer calls it directly; a clustered hub's state machine
//! (`cluster::machine`) calls it for every entry the cluster commits, on every member.
//!
//! Invariant: readers never see a change that is not yet durable, and a failed commit leaves
//! the catalog as it is on disk.

use super::log::{EntryResult, LogEntry};
use super::state::Catalog;
use super::store::{SnapshotError, Store};
use super::writer::{CommitFailed, Observer};
use crate::stats::Stats;
use rabble_shared::api::Event;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

pub struct Applier {
    pub store: Arc<Store>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub catalog: Catalog,
    pub snapshot: watch::Sender<Arc<Catalog>>,
    pub events: broadcast::Sender<Event>,
    pub stats: Arc<Stats>,
}

impl Applier {
    /// Applies `entry`, commits what it changed (with `applied`, the replication position,
    /// in the same transaction), lets observers catch up, publishes the snapshot, then
    /// the events. The commit runs off the async workers: an fsync must not stall DNS or
    /// the API.
    pub async fn apply(&mut self, entry: LogEntry, applied: Option<Vec<u8>>) -> Result<EntryResult, CommitFailed> {
        let applying = entry.apply(&mut self.catalog);
        if applying.dirty.is_empty() && applied.is_none() {
            return Ok(applying.result);
        }
        let changed = !applying.dirty.is_empty();
        let snapshot = Arc::new(self.catalog.clone());
        let (store, observers, snap, dirty) =
            (self.store.clone(), self.observers.clone(), snapshot.clone(), applying.dirty);
        let done = tokio::task::spawn_blocking(move || {
            store.commit(&snap, &dirty, applied.as_deref())?;
            if changed {
                for o in &observers {
                    o.committed(&snap);
                }
            }
            Ok::<(), super::StoreError>(())
        })
        .await;
        if let Err(e) = done.unwrap_or_else(|j| Err(super::StoreError::Panicked(j.to_string()))) {
            tracing::error!(error = %e, "catalog commit failed; reverting to the last durable catalog");
            if let Ok(durable) = self.store.load() {
                self.catalog = durable;
            }
            return Err(CommitFailed(e.to_string()));
        }
        if !changed {
            return Ok(applying.result);
        }
        self.stats.committed();
        let _ = self.snapshot.send(snapshot);
        let ts_ms = rabble_shared::support::clock::now_ms();
        for (topic, summary) in applying.summaries {
            tracing::info!(topic = %topic, "{summary}");
            let _ = self.events.send(Event { ts_ms, index: self.catalog.index, topic, summary });
        }
        Ok(applying.result)
    }

    /// Replaces the catalog with a snapshot from the cluster (one transaction), then tells
    /// observers and readers.
    pub async fn install(&mut self, snapshot: Vec<u8>, applied: Vec<u8>) -> Result<(), SnapshotError> {
        let store = self.store.clone();
        let installed = tokio::task::spawn_blocking(move || store.install(&snapshot, &applied))
            .await
            .unwrap_or_else(|j| Err(SnapshotError::Store(super::StoreError::Panicked(j.to_string()))))?;
        self.catalog = installed;
        let snap = Arc::new(self.catalog.clone());
        let observers = self.observers.clone();
        let s = snap.clone();
        let _ = tokio::task::spawn_blocking(move || observers.iter().for_each(|o| o.committed(&s))).await;
        let _ = self.snapshot.send(snap);
        tracing::info!(index = self.catalog.index, nodes = self.catalog.nodes.len(), "installed a catalog snapshot");
        Ok(())
    }
}
