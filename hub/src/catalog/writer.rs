//! The catalog's single writer: gathers validated updates in batches, commits each batch
//! as one entry (applied here by the `apply::Applier`, or proposed to the hub cluster), and
//! only once it is durable answers the inputs (an MQTT ack, a reply to an API call, or
//! nothing). While this hub leads it also declares nodes down when their heartbeats stop.
//!
//! Its input knows nothing of MQTT: an [`Input`] carries an [`Update`] and a [`Done`];
//! acks go through the small [`Acker`] trait (ingest's is the MQTT client).
//!
//! Invariant: readers never see a change that is not yet durable.

use super::apply::Applier;
use super::log::{Change, EntryResult, LogEntry};
use super::state::{Catalog, NodeUpdate, Update};
use rabble_shared::NodeId;
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::Heartbeat;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Updates applied per transaction at most.
const MAX_BATCH: usize = 512;
const LIVENESS_TICK: Duration = Duration::from_millis(250);
/// How long replies wait for this hub's copy to show a write the cluster committed.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// What the hub knows of a node that is not worth a disk write: its last heartbeat
/// and when it was last heard from.
#[derive(Debug, Clone)]
pub struct Live {
    pub heartbeat: Option<Heartbeat>,
    /// When the node was last heard from (the hub's start, for a node not heard from since).
    pub last_seen: Instant,
    /// Whether the node has spoken since the hub started: until it has, its liveness is
    /// unknown (the API says so) and it has the restart grace, not the heartbeat TTL.
    pub heard: bool,
}

impl Live {
    fn heard(now: Instant) -> Live {
        Live { heartbeat: None, last_seen: now, heard: true }
    }
}

pub type LiveMap = Arc<Mutex<HashMap<NodeId, Live>>>;

/// Each node's last heartbeat, where it sent one (`/metrics`, the alert rules, summaries).
pub fn heartbeats(live: &LiveMap) -> HashMap<NodeId, rabble_shared::msg::Heartbeat> {
    let live = live.lock().unwrap_or_else(|e| e.into_inner());
    live.iter().filter_map(|(id, l)| Some((id.clone(), l.heartbeat.clone()?))).collect()
}

/// Something that derives state from the catalog (the DNS zone) and must see every
/// committed catalog before readers do. Called off the async workers.
pub trait Observer: Send + Sync {
    fn committed(&self, catalog: &Arc<Catalog>);
}

/// Acknowledges an input once what it carried is durable (ingest: the MQTT PUBACK,
/// so the broker redelivers whatever the hub did not keep).
pub trait Acker: Send + 'static {
    type Token: Send + 'static;
    fn ack(&self, token: Self::Token) -> impl Future<Output = ()> + Send;
}

/// What became of an input that asked for a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The catalog index the change is visible at.
    pub index: u64,
    /// False when the update changed nothing (and nothing was written).
    pub changed: bool,
    /// A KV transaction's results or errors.
    pub txn: Option<super::kv_txn::TxnOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("catalog commit failed: {0}")]
pub struct CommitFailed(pub String);

pub type Reply = oneshot::Sender<Result<Committed, CommitFailed>>;

/// How the writer answers an input once its batch is durable (or failed).
#[derive(Debug)]
pub enum Done<T> {
    Nothing,
    Ack(T),
    Reply(Reply),
}

/// One change for the writer, from wherever it came.
#[derive(Debug)]
pub struct Input<T> {
    /// Where it came from, for events and logs: an MQTT topic, `api`, `hub`.
    pub source: String,
    /// `None`: nothing to change, only the `done` to answer — in order with the rest
    /// (rumqttd wants a connection's acks in the order it sent the messages).
    pub update: Option<Update>,
    pub done: Done<T>,
}

/// Where the writer's commits go: applied here (a single hub), or proposed to the hub
/// cluster, whose every member applies them (`cluster`).
pub enum Commit {
    Local(Box<Applier>),
    Cluster(Box<crate::cluster::Proposer>),
}

impl Commit {
    async fn commit(&mut self, entry: LogEntry) -> Result<EntryResult, CommitFailed> {
        match self {
            Commit::Local(applier) => applier.apply(entry, None).await,
            Commit::Cluster(proposer) => proposer.propose(entry).await,
        }
    }

    /// Whether this hub acts on liveness: a single hub always, a cluster member while it leads.
    fn leading(&self) -> bool {
        match self {
            Commit::Local(_) => true,
            Commit::Cluster(p) => p.leading(),
        }
    }
}

/// The writer's inputs and outputs.
pub struct Writer<A: Acker> {
    pub commit: Commit,
    pub rx: mpsc::Receiver<Input<A::Token>>,
    pub acker: A,
    pub heartbeat_ttl: Duration,
    /// The TTL of a node not heard from since this hub started leading (or started): long
    /// enough for its agent's reconnect backoff, so a hub restart or a fail-over moves no
    /// work (Nomad gives every node a fresh grace after a leader change too).
    pub restart_grace: Duration,
    /// The catalog as committed (what liveness reads).
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub live: LiveMap,
}

/// Per change: whether it changed anything, and a KV transaction's outcome.
type Outcome = (bool, Option<super::kv_txn::TxnOutcome>);

enum Step<T> {
    Batch(Vec<Input<T>>),
    Liveness,
    Stop,
}

impl<A: Acker> Writer<A> {
    /// Runs until every sender of its input is gone (shutdown: the inputs stop first,
    /// so whatever they sent is still committed).
    pub async fn run(mut self) {
        let mut leading = false;
        self.lead(&mut leading);
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
                Step::Liveness => self.liveness(&mut leading).await,
            }
        }
    }

    /// Commits the changes as one entry; returns, per change, whether it changed anything
    /// (inputs without an update changed nothing), or the commit's failure.
    async fn commit(&mut self, changes: Vec<(String, Option<Update>)>) -> Result<(u64, Vec<Outcome>), CommitFailed> {
        let mut at = Vec::with_capacity(changes.len());
        let mut entry = Vec::with_capacity(changes.len());
        for (i, (source, update)) in changes.into_iter().enumerate() {
            if let Some(update) = update {
                at.push(i);
                entry.push(Change { source, update });
            }
        }
        let mut out: Vec<Outcome> = vec![(false, None); at.capacity()];
        if entry.is_empty() {
            return Ok((self.snapshot.borrow().index, out));
        }
        let done = self.commit.commit(LogEntry::new(rabble_shared::support::clock::now_ms(), entry)).await?;
        for (i, r) in at.into_iter().zip(done.results) {
            out[i] = (r.changed, r.txn);
        }
        Ok((done.index, out))
    }

    async fn apply_batch(&mut self, batch: Vec<Input<A::Token>>) {
        let now = Instant::now();
        let mut changes = Vec::with_capacity(batch.len());
        let mut dones = Vec::with_capacity(batch.len());
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for item in batch {
                match &item.update {
                    // Only what the node says itself is hearing from it (not a drain by the API).
                    Some(Update::Node(node, nu)) if nu.is_from_node() => {
                        let entry = live.entry(node.clone()).or_insert_with(|| Live::heard(now));
                        entry.heard = true;
                        match nu {
                            NodeUpdate::Offline => {}
                            NodeUpdate::Heartbeat(hb) => {
                                // Metrics ride on one heartbeat in several: the last ones stay.
                                let kept = entry.heartbeat.take().and_then(|old| old.metrics);
                                let mut hb = hb.clone();
                                hb.metrics = hb.metrics.take().or(kept);
                                entry.heartbeat = Some(hb);
                                entry.last_seen = now;
                            }
                            _ => entry.last_seen = now,
                        }
                    }
                    Some(Update::Node(..)) => {}
                    Some(
                        Update::Job(..)
                        | Update::Alloc(..)
                        | Update::Kv(_)
                        | Update::KvTxn(_)
                        | Update::Var(_)
                        | Update::Acl(_)
                        | Update::Alert(_)
                        | Update::Volume(_),
                    )
                    | None => {}
                }
                dones.push(item.done);
                changes.push((item.source, item.update));
            }
        }
        let mut outcome = self.commit(changes).await;
        let mut replies = Vec::new();
        for (i, done) in dones.into_iter().enumerate() {
            match done {
                Done::Nothing => {}
                Done::Ack(token) => self.acker.ack(token).await,
                Done::Reply(tx) => {
                    let answer = match &mut outcome {
                        Ok((index, changed)) => {
                            Ok(Committed { index: *index, changed: changed[i].0, txn: changed[i].1.take() })
                        }
                        Err(e) => Err(e.clone()),
                    };
                    replies.push((tx, answer));
                }
            }
        }
        let index = outcome.as_ref().map_or(0, |(index, _)| *index);
        if replies.is_empty() || self.snapshot.borrow().index >= index {
            replies.into_iter().for_each(|(tx, answer)| drop(tx.send(answer)));
            return;
        }
        // Committed by the cluster, not yet applied here (a follower forwarded it): the replies
        // wait until this hub's copy shows it, so a caller reads what it wrote — without
        // holding up the next batch.
        let mut snapshot = self.snapshot.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CATCH_UP_WAIT, snapshot.wait_for(|c| c.index >= index)).await;
            replies.into_iter().for_each(|(tx, answer)| drop(tx.send(answer)));
        });
    }

    /// Whether this hub acts on liveness now; when it starts to (a start, or a fail-over),
    /// every node not heard from yet gets the restart grace to be heard from.
    fn lead(&mut self, leading: &mut bool) -> bool {
        if !self.commit.leading() {
            *leading = false;
            return false;
        }
        if !*leading {
            *leading = true;
            let now = Instant::now();
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for id in self.snapshot.borrow().nodes.keys() {
                live.entry(id.clone()).or_insert(Live { heartbeat: None, last_seen: now, heard: false });
            }
        }
        true
    }

    async fn liveness(&mut self, leading: &mut bool) {
        let now = Instant::now();
        if !self.lead(leading) {
            return;
        }
        let expired: Vec<NodeId> = {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            self.snapshot
                .borrow()
                .nodes
                .iter()
                .filter(|(_, n)| n.status == NodeStatus::Up && !n.is_external())
                .filter(|(id, _)| {
                    live.get(*id).is_none_or(|l| {
                        let ttl = if l.heard { self.heartbeat_ttl } else { self.restart_grace };
                        now.duration_since(l.last_seen) > ttl
                    })
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        if !expired.is_empty() {
            let changes = expired
                .into_iter()
                .map(|id| ("hub".to_owned(), Some(Update::Node(id, NodeUpdate::HeartbeatTimeout))))
                .collect();
            // A failed commit is logged where it failed; the next tick tries again.
            let _ = self.commit(changes).await;
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
