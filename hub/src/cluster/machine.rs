//! The state machine every member runs: committed entries go to the catalog's `Applier`
//! (memory, redb, observers, readers), with the Raft position (last applied log id and
//! membership) written in the same redb transaction — so after a crash the catalog and
//! the position it reached agree, and nothing is applied twice.
//!
//! Snapshots are the store's own dump (`Store::dump`): built on demand from redb, installed
//! in one transaction.

use super::TypeConfig;
use crate::catalog::apply::Applier;
use crate::catalog::log::{LOG_FORMAT, LogEntry};
use futures_util::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use std::io::{self, Cursor};
use std::sync::Arc;
use tokio::sync::Mutex;

type Position = (Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>);

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct Inner {
    applier: Applier,
    applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
}

impl Inner {
    fn position(&self) -> Result<Vec<u8>, io::Error> {
        serde_json::to_vec(&(&self.applied, &self.membership)).map_err(io_err)
    }
}

/// The state machine; clones share it (the snapshot builder is a clone).
#[derive(Clone)]
pub struct Machine(Arc<Mutex<Inner>>);

impl Machine {
    /// Over the catalog as stored, at the position stored with it — or at none after a
    /// `cluster reset` (the catalog is kept; the old cluster's position is forgotten, through
    /// the applier like every write).
    pub async fn new(mut applier: Applier, reset: bool) -> Result<Machine, super::ClusterError> {
        if reset {
            let none: Position = (None, StoredMembershipOf::<TypeConfig>::default());
            let bytes = serde_json::to_vec(&none).map_err(|e| super::ClusterError::Raft(e.to_string()))?;
            applier.apply(LogEntry::new(0, vec![]), Some(bytes)).await.map_err(|e| super::ClusterError::Raft(e.0))?;
        }
        let stored = applier.store.applied().map_err(|e| super::ClusterError::Raft(e.to_string()))?;
        let (applied, membership): Position = match stored {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| super::ClusterError::Raft(format!("the catalog's raft position: {e}")))?,
            None => (None, StoredMembershipOf::<TypeConfig>::default()),
        };
        Ok(Machine(Arc::new(Mutex::new(Inner { applier, applied, membership }))))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Machine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Cursor<Vec<u8>>>, io::Error> {
        let inner = self.0.lock().await;
        let store = inner.applier.store.clone();
        // Under the lock: nothing is applied while the dump is read, so it is at `applied`.
        let data = tokio::task::spawn_blocking(move || store.dump()).await.map_err(io_err)?.map_err(io_err)?;
        let meta =
            SnapshotMetaOf::<TypeConfig> { last_log_id: inner.applied, last_membership: inner.membership.clone() };
        tracing::debug!(bytes = data.len(), "built a catalog snapshot");
        Ok(SnapshotOf::<TypeConfig, Cursor<Vec<u8>>> { meta, snapshot: Cursor::new(data) })
    }
}

impl RaftStateMachine<TypeConfig> for Machine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<Position, io::Error> {
        let inner = self.0.lock().await;
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut inner = self.0.lock().await;
        while let Some((entry, responder)) = entries.try_next().await? {
            inner.applied = Some(entry.log_id);
            let work = match entry.payload {
                EntryPayload::Normal(e) if e.format > LOG_FORMAT => {
                    return Err(io_err(format!(
                        "log entry {} is format {}, from a newer hub (this one reads up to {LOG_FORMAT}): upgrade this hub",
                        entry.log_id, e.format
                    )));
                }
                EntryPayload::Normal(e) => e,
                EntryPayload::Blank => LogEntry::new(0, vec![]),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), m);
                    LogEntry::new(0, vec![])
                }
            };
            let position = inner.position()?;
            // A failed commit stops this member's Raft (it cannot go on without the entry);
            // the hub stops with the reason, the others carry on.
            let result = inner.applier.apply(work, Some(position)).await.map_err(io_err)?;
            if let Some(r) = responder {
                r.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let mut inner = self.0.lock().await;
        inner.applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        let position = inner.position()?;
        inner.applier.install(snapshot.into_inner(), position).await.map_err(io_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<TypeConfig, Self::SnapshotData>>, io::Error> {
        // The catalog is durable at every applied entry, so the current snapshot is the
        // catalog now (never older than one built or installed before).
        if self.0.lock().await.applied.is_none() {
            return Ok(None);
        }
        self.build_snapshot().await.map(Some)
    }
}
