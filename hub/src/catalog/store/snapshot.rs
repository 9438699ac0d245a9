//! The whole stored catalog as one document — what a clustered hub sends a new or lagging
//! member (a Raft snapshot) — and its installation: every table replaced, the index and the
//! applied position written, in one redb transaction (a crash leaves the old catalog or
//! the new one, never half of each).
//!
//! Rows travel as the storage records they are (`rabble_core::catalog::record`), so a
//! snapshot carries exactly what redb holds and nothing is re-encoded on the way.

use super::{
    ACL_BOOTSTRAP_KEY, ACL_POLICIES, ACL_TOKENS, ALERTS, ALLOCS, APPLIED_KEY, CHECKS, INDEX_KEY, JOB_VERSIONS, JOBS,
    KV, META, NODES, RAFT, SERVICES, SILENCES, Store, StoreError, VARS, VOLUMES, db,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// The document's format. Moves when its shape changes (not when a record's does: records
/// carry their own versions).
pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("catalog snapshot is format {0}, from a newer hub (this one reads up to {SNAPSHOT_FORMAT})")]
    Newer(u32),
    #[error("catalog snapshot does not decode: {0}")]
    Decode(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Rows = Vec<(String, String)>;
type PairRows = Vec<(String, String, String)>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    format: u32,
    index: u64,
    acl_bootstrap: Option<u64>,
    nodes: Rows,
    services: PairRows,
    checks: PairRows,
    jobs: Rows,
    job_versions: Vec<(String, u64, String)>,
    allocs: Rows,
    kv: Rows,
    vars: Rows,
    acl_policies: Rows,
    acl_tokens: Rows,
    /// Absent in snapshots of hubs before alerts: none.
    #[serde(default)]
    alerts: Rows,
    #[serde(default)]
    silences: Rows,
    /// Absent in snapshots of hubs before volumes: none.
    #[serde(default)]
    volumes: Rows,
}

fn text(v: &[u8]) -> Result<String, StoreError> {
    // Records are JSON: UTF-8 by construction; anything else is not a record of ours.
    String::from_utf8(v.to_vec())
        .map_err(|e| StoreError::Db(redb::StorageError::Corrupted(format!("a record: {e}")).into()))
}

fn rows(tx: &redb::ReadTransaction, t: TableDefinition<'_, &str, &[u8]>) -> Result<Rows, StoreError> {
    let mut out = Vec::new();
    for row in tx.open_table(t).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        out.push((k.value().to_owned(), text(v.value())?));
    }
    Ok(out)
}

fn pair_rows(tx: &redb::ReadTransaction, t: TableDefinition<'_, (&str, &str), &[u8]>) -> Result<PairRows, StoreError> {
    let mut out = Vec::new();
    for row in tx.open_table(t).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let (a, b) = k.value();
        out.push((a.to_owned(), b.to_owned(), text(v.value())?));
    }
    Ok(out)
}

impl Store {
    /// Everything stored, as one consistent document (one read transaction).
    pub fn dump(&self) -> Result<Vec<u8>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let meta = tx.open_table(META).map_err(db)?;
        let mut doc = Doc {
            format: SNAPSHOT_FORMAT,
            index: meta.get(INDEX_KEY).map_err(db)?.map_or(0, |v| v.value()),
            acl_bootstrap: meta.get(ACL_BOOTSTRAP_KEY).map_err(db)?.map(|v| v.value()),
            nodes: rows(&tx, NODES)?,
            services: pair_rows(&tx, SERVICES)?,
            checks: pair_rows(&tx, CHECKS)?,
            jobs: rows(&tx, JOBS)?,
            allocs: rows(&tx, ALLOCS)?,
            kv: rows(&tx, KV)?,
            vars: rows(&tx, VARS)?,
            acl_policies: rows(&tx, ACL_POLICIES)?,
            acl_tokens: rows(&tx, ACL_TOKENS)?,
            alerts: rows(&tx, ALERTS)?,
            silences: rows(&tx, SILENCES)?,
            volumes: rows(&tx, VOLUMES)?,
            ..Doc::default()
        };
        for row in tx.open_table(JOB_VERSIONS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (id, version) = k.value();
            doc.job_versions.push((id.to_owned(), version, text(v.value())?));
        }
        Ok(serde_json::to_vec(&doc).unwrap_or_default())
    }

    /// Replaces everything stored with `snapshot` and records `applied` beside it, in one
    /// transaction; returns the catalog as now stored. Only the catalog's applier installs.
    pub(in crate::catalog) fn install(&self, snapshot: &[u8], applied: &[u8]) -> Result<super::Catalog, SnapshotError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let f: Format = serde_json::from_slice(snapshot).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if f.format > SNAPSHOT_FORMAT {
            return Err(SnapshotError::Newer(f.format));
        }
        let doc: Doc = serde_json::from_slice(snapshot).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let tx = self.db.begin_write().map_err(db)?;
        fn put(
            tx: &redb::WriteTransaction,
            t: TableDefinition<'_, &str, &[u8]>,
            rows: &Rows,
        ) -> Result<(), StoreError> {
            tx.delete_table(t).map_err(db)?;
            let mut table = tx.open_table(t).map_err(db)?;
            for (k, v) in rows {
                table.insert(k.as_str(), v.as_bytes()).map_err(db)?;
            }
            Ok(())
        }
        fn put_pairs(
            tx: &redb::WriteTransaction,
            t: TableDefinition<'_, (&str, &str), &[u8]>,
            rows: &PairRows,
        ) -> Result<(), StoreError> {
            tx.delete_table(t).map_err(db)?;
            let mut table = tx.open_table(t).map_err(db)?;
            for (a, b, v) in rows {
                table.insert((a.as_str(), b.as_str()), v.as_bytes()).map_err(db)?;
            }
            Ok(())
        }
        put(&tx, NODES, &doc.nodes)?;
        put_pairs(&tx, SERVICES, &doc.services)?;
        put_pairs(&tx, CHECKS, &doc.checks)?;
        put(&tx, JOBS, &doc.jobs)?;
        tx.delete_table(JOB_VERSIONS).map_err(db)?;
        {
            let mut versions = tx.open_table(JOB_VERSIONS).map_err(db)?;
            for (id, version, v) in &doc.job_versions {
                versions.insert((id.as_str(), *version), v.as_bytes()).map_err(db)?;
            }
        }
        put(&tx, ALLOCS, &doc.allocs)?;
        put(&tx, KV, &doc.kv)?;
        put(&tx, VARS, &doc.vars)?;
        put(&tx, ACL_POLICIES, &doc.acl_policies)?;
        put(&tx, ACL_TOKENS, &doc.acl_tokens)?;
        put(&tx, ALERTS, &doc.alerts)?;
        put(&tx, SILENCES, &doc.silences)?;
        put(&tx, VOLUMES, &doc.volumes)?;
        {
            let mut meta = tx.open_table(META).map_err(db)?;
            meta.insert(INDEX_KEY, doc.index).map_err(db)?;
            match doc.acl_bootstrap {
                Some(at) => drop(meta.insert(ACL_BOOTSTRAP_KEY, at).map_err(db)?),
                None => drop(meta.remove(ACL_BOOTSTRAP_KEY).map_err(db)?),
            }
        }
        tx.open_table(RAFT).map_err(db)?.insert(APPLIED_KEY, applied).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(self.load()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::state::{Catalog, NodeUpdate, Update};
    use rabble_shared::NodeId;

    #[test]
    fn a_dump_installed_elsewhere_is_the_same_catalog() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (from, mut cat) = Store::open(a.path()).unwrap();
        let mut updates = vec![];
        for n in ["pi1", "pi2"] {
            updates.push(Some(Update::Node(NodeId::new(n).unwrap(), NodeUpdate::Online)));
        }
        let set =
            rabble_core::catalog::kv::KvUpdate::Set { key: "k".into(), value: b"v".to_vec(), flags: 1, cas: None };
        updates.push(Some(Update::Kv(set)));
        let silence = rabble_core::alert::group::Silence {
            id: "s1".into(),
            matchers: vec![rabble_core::alert::group::Matcher::parse("node=pi1").unwrap()],
            starts_ms: 1,
            ends_ms: 9,
            created_by: "admin".into(),
            comment: String::new(),
            updated_ms: 1,
        };
        updates.push(Some(Update::Alert(rabble_core::alert::book::AlertUpdate::Silence(silence))));
        let mut state = rabble_core::alert::book::AlertState::default();
        state.tracker.watched.insert(
            "k".into(),
            rabble_core::alert::track::Tracked {
                labels: Default::default(),
                annotations: Default::default(),
                active_ms: 1,
                firing_ms: Some(2),
            },
        );
        updates.push(Some(Update::Alert(rabble_core::alert::book::AlertUpdate::State(Box::new(state)))));
        let batch = cat.apply_batch(updates, 5);
        assert_eq!(cat.alerts.silences.len(), 1);
        from.commit(&cat, &batch.dirty, Some(b"at-1")).unwrap();
        // The receiver held something else, which must go.
        let (to, mut other) = Store::open(b.path()).unwrap();
        let batch = other.apply_batch(vec![Some(Update::Node(NodeId::new("gone").unwrap(), NodeUpdate::Online))], 1);
        to.commit(&other, &batch.dirty, None).unwrap();
        let installed = to.install(&from.dump().unwrap(), b"at-2").unwrap();
        assert_eq!(installed, cat);
        assert_eq!(to.applied().unwrap().as_deref(), Some(&b"at-2"[..]));
        assert_eq!(from.applied().unwrap().as_deref(), Some(&b"at-1"[..]));
        drop(to);
        assert_eq!(Store::open(b.path()).unwrap().1, cat, "durable");
        assert_eq!(Catalog::default().index, 0);
    }

    #[test]
    fn a_newer_or_broken_snapshot_is_refused_and_changes_nothing() {
        let a = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(a.path()).unwrap();
        assert!(matches!(store.install(br#"{"format":9}"#, b"x"), Err(SnapshotError::Newer(9))));
        assert!(matches!(store.install(b"{\"format\":1,\"nodes\":7}", b"x"), Err(SnapshotError::Decode(_))));
        assert_eq!(store.applied().unwrap(), None);
    }
}
