//! The catalog's single writer: applies validated updates in batches, commits each
//! batch to redb in one transaction, and only then publishes the new snapshot, emits
//! events and acknowledges the MQTT messages. It also declares nodes down when their
//! heartbeats stop.
//!
//! Invariant: readers never see a change that is not yet durable.

use super::state::{Catalog, Dirty, Update};
use super::store::Store;
use crate::ingest::Ingested;
use crate::stats::Stats;
use rabble_shared::NodeId;
use rabble_shared::api::{Event, NodeStatus};
use rabble_shared::msg::Heartbeat;
use rumqttc::AsyncClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// Updates applied per transaction at most.
const MAX_BATCH: usize = 512;
const LIVENESS_TICK: Duration = Duration::from_millis(250);

/// What the hub knows of a node that is not worth a disk write: its last heartbeat
/// and when it was last heard from.
#[derive(Debug, Clone)]
pub struct Live {
    pub heartbeat: Option<Heartbeat>,
    pub last_seen: Instant,
}

pub type LiveMap = Arc<Mutex<HashMap<NodeId, Live>>>;

/// Something that derives state from the catalog (the DNS zone) and must see every
/// committed catalog before readers do. Called off the async workers.
pub trait Observer: Send + Sync {
    fn committed(&self, catalog: &Arc<Catalog>);
}

/// The writer's inputs and outputs.
pub struct Writer {
    pub store: Arc<Store>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub catalog: Catalog,
    pub rx: mpsc::Receiver<Ingested>,
    pub acker: AsyncClient,
    pub heartbeat_ttl: Duration,
    pub snapshot: watch::Sender<Arc<Catalog>>,
    pub live: LiveMap,
    pub events: broadcast::Sender<Event>,
    pub stats: Arc<Stats>,
}

enum Step {
    Batch(Vec<Ingested>),
    Liveness,
    Stop,
}

impl Writer {
    /// Runs until the ingest side closes the channel.
    pub async fn run(mut self) {
        {
            // After a restart every node gets a full TTL to be heard from again.
            let now = Instant::now();
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for id in self.catalog.nodes.keys() {
                live.insert(id.clone(), Live { heartbeat: None, last_seen: now });
            }
        }
        let mut tick = tokio::time::interval(LIVENESS_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let step = tokio::select! {
                first = self.rx.recv() => match first {
                    None => Step::Stop,
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match self.rx.try_recv() {
                                Ok(x) => batch.push(x),
                                Err(_) => break,
                            }
                        }
                        Step::Batch(batch)
                    }
                },
                _ = tick.tick() => Step::Liveness,
            };
            match step {
                Step::Stop => return,
                Step::Batch(batch) => self.apply_batch(batch).await,
                Step::Liveness => self.liveness().await,
            }
        }
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    /// Applies, commits (off the async workers: an fsync must not stall DNS or the
    /// API), lets observers catch up, then publishes.
    async fn commit(&mut self, changes: Vec<(String, Update)>) {
        let mut dirty: Vec<Dirty> = Vec::new();
        let mut summaries: Vec<(String, String)> = Vec::new();
        for (topic, u) in changes {
            let applied = self.catalog.apply(u);
            dirty.extend(applied.dirty);
            summaries.extend(applied.summaries.into_iter().map(|s| (topic.clone(), s)));
        }
        if dirty.is_empty() {
            return;
        }
        dirty.sort();
        dirty.dedup();
        self.catalog.index += 1;
        let snapshot = Arc::new(self.catalog.clone());
        let (store, observers, snap) = (self.store.clone(), self.observers.clone(), snapshot.clone());
        let done = tokio::task::spawn_blocking(move || {
            store.commit(&snap, &dirty)?;
            for o in &observers {
                o.committed(&snap);
            }
            Ok::<(), super::StoreError>(())
        })
        .await;
        if let Err(e) = done.unwrap_or_else(|j| Err(super::StoreError::Panicked(j.to_string()))) {
            tracing::error!(error = %e, "catalog commit failed; reverting to the last durable catalog");
            if let Ok(durable) = self.store.load() {
                self.catalog = durable;
            }
            return;
        }
        self.stats.committed();
        let _ = self.snapshot.send(snapshot);
        let ts_ms = Self::now_ms();
        for (topic, summary) in summaries {
            tracing::info!(topic = %topic, "{summary}");
            let _ = self.events.send(Event { ts_ms, index: self.catalog.index, topic, summary });
        }
    }

    async fn apply_batch(&mut self, batch: Vec<Ingested>) {
        let now = Instant::now();
        let mut changes = Vec::with_capacity(batch.len());
        let mut acks = Vec::new();
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for item in batch {
                let node = item.update.node().clone();
                let entry = live.entry(node).or_insert(Live { heartbeat: None, last_seen: now });
                match &item.update {
                    Update::Offline(_) => {}
                    Update::Heartbeat(_, hb) => {
                        entry.heartbeat = Some(hb.clone());
                        entry.last_seen = now;
                    }
                    _ => entry.last_seen = now,
                }
                acks.extend(item.ack);
                changes.push((item.topic, item.update));
            }
        }
        self.commit(changes).await;
        for a in acks {
            if let Err(e) = self.acker.ack(&a).await {
                tracing::warn!(error = %e, "could not acknowledge");
            }
        }
    }

    async fn liveness(&mut self) {
        let now = Instant::now();
        let expired: Vec<NodeId> = {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            self.catalog
                .nodes
                .iter()
                .filter(|(_, n)| n.status == NodeStatus::Up)
                .filter(|(id, _)| live.get(*id).is_none_or(|l| now.duration_since(l.last_seen) > self.heartbeat_ttl))
                .map(|(id, _)| id.clone())
                .collect()
        };
        if !expired.is_empty() {
            self.commit(expired.into_iter().map(|id| ("hub".to_owned(), Update::HeartbeatTimeout(id))).collect()).await;
        }
    }
}
