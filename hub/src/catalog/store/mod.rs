//! The catalog's durable form in redb: one table per kind of record, each value a storage
//! record (`rabble_core::catalog::record`: versioned JSON of types of their own), and
//! `meta` (the catalog's index and the store's format). A data dir written before storage
//! records (format 0, `v0.rs`) is migrated in one transaction when it is opened.
//!
//! Invariant: only the catalog writer calls [`Store::commit`]; nothing else writes redb.

mod snapshot;
mod v0;
pub use snapshot::{SNAPSHOT_FORMAT, SnapshotError};

use super::record::{self, AllocRecord, CheckRecord, JobRow, JobVersionRow, KvRecord, NodeRecord, Record};
use super::record::{
    AclPolicyRecord, AclTokenRecord, AlertStateRecord, FORMAT, ServiceRecord, SilenceRecord, VarRecord, VolumeRecord,
};
use super::state::{Catalog, Dirty, Node, Work};
use rabble_shared::{AllocId, NodeId, TopicId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NODES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.nodes");
const SERVICES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("v1.services");
const CHECKS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("v1.checks");
const JOBS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.jobs");
const JOB_VERSIONS: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("v1.job_versions");
const ALLOCS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.allocs");
const KV: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.kv");
const VARS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.vars");
const ACL_POLICIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.acl_policies");
const ACL_TOKENS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.acl_tokens");
/// The alert task's state (one row, [`ALERT_STATE_KEY`]).
const ALERTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.alerts");
const SILENCES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.silences");
const VOLUMES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("v1.volumes");
const ALERT_STATE_KEY: &str = "state";
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// A clustered hub's replication state, written in the same transaction as what it applied
/// (`cluster::machine` encodes it): a crash never applies an entry twice.
const RAFT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("raft");
const APPLIED_KEY: &str = "applied";
const INDEX_KEY: &str = "index";
const FORMAT_KEY: &str = "format";
/// The index the ACLs were bootstrapped at (absent: not bootstrapped).
const ACL_BOOTSTRAP_KEY: &str = "acl_bootstrap";
/// A small page cache: the hub must fit a 512 MB LXC next to everything else.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("catalog database {path}: {error}")]
    Open { path: PathBuf, error: redb::Error },
    #[error("catalog database: {0}")]
    Db(#[from] redb::Error),
    #[error("catalog commit task failed: {0}")]
    Panicked(String),
    #[error("data directory {path}: {error}")]
    Dir { path: PathBuf, error: std::io::Error },
    #[error("catalog database {path} is format {found}, from a newer hub (this one reads up to {FORMAT})")]
    Newer { path: PathBuf, found: u64 },
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (or creates) `<data_dir>/catalog.redb`, migrates an older format, and loads
    /// the catalog. Records that no longer decode are skipped with a warning, never fatal.
    pub fn open(data_dir: &Path) -> Result<(Store, Catalog), StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::Dir { path: data_dir.to_owned(), error: source })?;
        let path = data_dir.join("catalog.redb");
        let database = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::Open { path: path.clone(), error: e.into() })?;
        let store = Store { db: database };
        let old = v0::present(&store.db)?;
        let tx = store.db.begin_write().map_err(db)?;
        {
            let mut meta = tx.open_table(META).map_err(db)?;
            let format = meta.get(FORMAT_KEY).map_err(db)?.map(|v| v.value());
            match format {
                Some(f) if f > FORMAT => return Err(StoreError::Newer { path, found: f }),
                Some(_) => {}
                None if old => {}
                None => drop(meta.insert(FORMAT_KEY, FORMAT).map_err(db)?),
            }
        }
        // Make sure every table exists, so a read of a fresh file works.
        tx.open_table(NODES).map_err(db)?;
        tx.open_table(SERVICES).map_err(db)?;
        tx.open_table(CHECKS).map_err(db)?;
        tx.open_table(JOBS).map_err(db)?;
        tx.open_table(JOB_VERSIONS).map_err(db)?;
        tx.open_table(ALLOCS).map_err(db)?;
        tx.open_table(KV).map_err(db)?;
        tx.open_table(VARS).map_err(db)?;
        tx.open_table(ACL_POLICIES).map_err(db)?;
        tx.open_table(ACL_TOKENS).map_err(db)?;
        tx.open_table(ALERTS).map_err(db)?;
        tx.open_table(SILENCES).map_err(db)?;
        tx.open_table(VOLUMES).map_err(db)?;
        if old {
            migrate(&tx, &path)?;
        }
        tx.commit().map_err(db)?;
        let catalog = store.load()?;
        Ok((store, catalog))
    }

    /// Reads the whole durable catalog.
    pub fn load(&self) -> Result<Catalog, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
        for row in tx.open_table(NODES).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let Ok(id) = NodeId::new(k.value()) else { continue };
            match record::decode::<NodeRecord>(v.value()).and_then(NodeRecord::into_node) {
                Ok(n) => drop(nodes.insert(id, n)),
                Err(e) => tracing::warn!(node = k.value(), error = %e, "skipping a stored node"),
            }
        }
        for row in tx.open_table(SERVICES).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, s) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(s)) else { continue };
            match (nodes.get_mut(&id), record::decode::<ServiceRecord>(v.value())) {
                (Some(node), Ok(r)) => drop(node.services.insert(key, r.registration)),
                (_, Err(e)) => tracing::warn!(node = n, service = s, error = %e, "skipping a stored service"),
                (None, _) => {}
            }
        }
        for row in tx.open_table(CHECKS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, c) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(c)) else { continue };
            match (nodes.get_mut(&id), record::decode::<CheckRecord>(v.value())) {
                (Some(node), Ok(r)) => drop(node.checks.insert(key, r.state)),
                (_, Err(e)) => tracing::warn!(node = n, check = c, error = %e, "skipping a stored check"),
                (None, _) => {}
            }
        }
        let index = tx.open_table(META).map_err(db)?.get(INDEX_KEY).map_err(db)?.map_or(0, |v| v.value());
        let mut work = Work::default();
        for row in tx.open_table(JOBS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match record::decode::<JobRow>(v.value()) {
                Ok(j) => drop(work.jobs.insert(k.value().to_owned(), j.into_job())),
                Err(e) => tracing::warn!(job = k.value(), error = %e, "skipping a stored job"),
            }
        }
        for row in tx.open_table(JOB_VERSIONS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (id, version) = k.value();
            match record::decode::<JobVersionRow>(v.value()) {
                Ok(r) => {
                    if r.submit_ms > 0 {
                        work.history_ms.insert((id.to_owned(), version), r.submit_ms);
                    }
                    work.history.insert((id.to_owned(), version), r.spec.into());
                }
                Err(e) => tracing::warn!(job = id, version, error = %e, "skipping a stored job version"),
            }
        }
        for row in tx.open_table(ALLOCS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match (AllocId::new(k.value()), record::decode::<AllocRecord>(v.value())) {
                (Ok(id), Ok(r)) => drop(work.allocs.insert(id, r.alloc.into())),
                (_, Err(e)) => tracing::warn!(alloc = k.value(), error = %e, "skipping a stored allocation"),
                (Err(e), _) => tracing::warn!(alloc = k.value(), error = %e, "skipping a stored allocation"),
            }
        }
        let mut entries = BTreeMap::new();
        for row in tx.open_table(KV).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match record::decode::<KvRecord>(v.value()).and_then(KvRecord::into_entry) {
                Ok(e) => drop(entries.insert(k.value().to_owned(), Arc::new(e))),
                Err(e) => tracing::warn!(key = k.value(), error = %e, "skipping a stored KV entry"),
            }
        }
        // The last delete's index is not kept: the catalog's bounds it.
        let kv = super::kv::Kv { entries: Arc::new(entries), index };
        let mut vars = BTreeMap::new();
        for row in tx.open_table(VARS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match record::decode::<VarRecord>(v.value()).and_then(VarRecord::into_var) {
                Ok(e) => drop(vars.insert(k.value().to_owned(), Arc::new(e))),
                Err(e) => tracing::warn!(path = k.value(), error = %e, "skipping a stored variable"),
            }
        }
        let vars = super::vars::Vars { entries: Arc::new(vars) };
        let acl = load_acl(&tx)?;
        let alerts = load_alerts(&tx)?;
        let mut volumes = BTreeMap::new();
        for row in tx.open_table(VOLUMES).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match record::decode::<VolumeRecord>(v.value()).and_then(|r| r.into_volume(k.value())) {
                Ok(vol) => drop(volumes.insert(k.value().to_owned(), Arc::new(vol))),
                Err(e) => tracing::warn!(volume = k.value(), error = %e, "skipping a stored volume"),
            }
        }
        let volumes = rabble_core::catalog::volumes::Volumes { entries: Arc::new(volumes) };
        Ok(Catalog { nodes, work, index, kv, vars, acl, alerts, volumes })
    }

    /// Writes the current value of every dirty key, and the index, in one transaction
    /// (one fsync for a whole batch). Only the catalog's writer commits: the compiler
    /// keeps it so (`pub(in crate::catalog)`).
    pub(in crate::catalog) fn commit(
        &self,
        catalog: &Catalog,
        dirty: &[Dirty],
        applied: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        write(&tx, catalog, dirty)?;
        if let Some(a) = applied {
            tx.open_table(RAFT).map_err(db)?.insert(APPLIED_KEY, a).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// What a clustered hub last applied (as `commit` was given it), if anything.
    pub fn applied(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = match tx.open_table(RAFT) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        Ok(t.get(APPLIED_KEY).map_err(db)?.map(|v| v.value().to_vec()))
    }
}

/// Every record of a catalog, as dirty keys (what a migration writes).
fn everything(c: &Catalog) -> Vec<Dirty> {
    let mut out = Vec::new();
    for (id, n) in &c.nodes {
        out.push(Dirty::Node(id.clone()));
        out.extend(n.services.keys().map(|k| Dirty::Service(id.clone(), k.clone())));
        out.extend(n.checks.keys().map(|k| Dirty::Check(id.clone(), k.clone())));
    }
    out.extend(c.work.jobs.keys().map(|j| Dirty::Job(j.clone())));
    out.extend(c.work.history.keys().map(|(j, v)| Dirty::JobVersion(j.clone(), *v)));
    out.extend(c.work.allocs.keys().map(|a| Dirty::Alloc(a.clone())));
    out.extend(c.kv.entries.keys().map(|k| Dirty::Kv(k.clone())));
    out.extend(c.vars.entries.keys().map(|p| Dirty::Var(p.clone())));
    out.extend(c.acl.policies.keys().map(|p| Dirty::AclPolicy(p.clone())));
    out.extend(c.acl.tokens.keys().map(|a| Dirty::AclToken(a.clone())));
    out.push(Dirty::AclBootstrap);
    out.push(Dirty::AlertState);
    out.extend(c.alerts.silences.keys().map(|id| Dirty::Silence(id.clone())));
    out.extend(c.volumes.entries.keys().map(|n| Dirty::Volume(n.clone())));
    out
}

/// The alert task's state and the silences.
fn load_alerts(tx: &redb::ReadTransaction) -> Result<rabble_core::alert::book::AlertBook, StoreError> {
    let mut book = rabble_core::alert::book::AlertBook::default();
    if let Some(v) = tx.open_table(ALERTS).map_err(db)?.get(ALERT_STATE_KEY).map_err(db)? {
        match record::decode::<AlertStateRecord>(v.value()) {
            Ok(r) => book.state = Arc::new(r.state),
            Err(e) => tracing::warn!(error = %e, "skipping the stored alert state (alerts firing may be sent again)"),
        }
    }
    for row in tx.open_table(SILENCES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        match record::decode::<SilenceRecord>(v.value()) {
            Ok(r) => drop(book.silences.insert(k.value().to_owned(), r.silence)),
            Err(e) => tracing::warn!(silence = k.value(), error = %e, "skipping a stored silence"),
        }
    }
    Ok(book)
}

/// The ACL policies, tokens and bootstrap index.
fn load_acl(tx: &redb::ReadTransaction) -> Result<rabble_core::acl::Acl, StoreError> {
    let mut policies = BTreeMap::new();
    for row in tx.open_table(ACL_POLICIES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        match record::decode::<AclPolicyRecord>(v.value()).and_then(|r| r.into_policy(k.value())) {
            Ok(p) => drop(policies.insert(k.value().to_owned(), Arc::new(p))),
            Err(e) => tracing::warn!(policy = k.value(), error = %e, "skipping a stored ACL policy"),
        }
    }
    let mut tokens = BTreeMap::new();
    for row in tx.open_table(ACL_TOKENS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        match record::decode::<AclTokenRecord>(v.value()) {
            Ok(r) => drop(tokens.insert(k.value().to_owned(), Arc::new(r.into_token(k.value())))),
            Err(e) => tracing::warn!(accessor = k.value(), error = %e, "skipping a stored ACL token"),
        }
    }
    let bootstrapped = tx.open_table(META).map_err(db)?.get(ACL_BOOTSTRAP_KEY).map_err(db)?.map(|v| v.value());
    Ok(rabble_core::acl::Acl::new(policies, tokens, bootstrapped))
}

/// Format 0 → 1 in the open transaction: everything read the old way, written as records,
/// the old tables dropped; all or nothing.
fn migrate(tx: &WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let index = tx.open_table(META).map_err(db)?.get(INDEX_KEY).map_err(db)?.map_or(0, |v| v.value());
    let catalog = v0::load(tx, index)?;
    write(tx, &catalog, &everything(&catalog))?;
    for t in v0::TABLES {
        let def: TableDefinition<'_, &str, &[u8]> = TableDefinition::new(t);
        // Tables of other key types are deleted by name just the same.
        tx.delete_table(def).map_err(db)?;
    }
    tx.open_table(META).map_err(db)?.insert(FORMAT_KEY, FORMAT).map_err(db)?;
    tracing::info!(
        path = %path.display(),
        nodes = catalog.nodes.len(),
        jobs = catalog.work.jobs.len(),
        allocations = catalog.work.allocs.len(),
        kv = catalog.kv.entries.len(),
        variables = catalog.vars.entries.len(),
        "migrated the catalog to format {FORMAT} (storage records)"
    );
    Ok(())
}

/// Puts (or removes) the record of every dirty key, and the index.
fn write(tx: &WriteTransaction, catalog: &Catalog, dirty: &[Dirty]) -> Result<(), StoreError> {
    fn put<K: redb::Key + 'static, R: Record>(
        t: &mut redb::Table<'_, K, &'static [u8]>,
        k: K::SelfType<'_>,
        r: Option<R>,
    ) -> Result<(), StoreError> {
        match r {
            Some(r) => drop(t.insert(k, record::encode(&r).as_slice()).map_err(db)?),
            None => drop(t.remove(k).map_err(db)?),
        }
        Ok(())
    }
    let mut nodes = tx.open_table(NODES).map_err(db)?;
    let mut services = tx.open_table(SERVICES).map_err(db)?;
    let mut checks = tx.open_table(CHECKS).map_err(db)?;
    let mut jobs = tx.open_table(JOBS).map_err(db)?;
    let mut versions = tx.open_table(JOB_VERSIONS).map_err(db)?;
    let mut allocs = tx.open_table(ALLOCS).map_err(db)?;
    let mut kv = tx.open_table(KV).map_err(db)?;
    let mut vars = tx.open_table(VARS).map_err(db)?;
    let mut acl_policies = tx.open_table(ACL_POLICIES).map_err(db)?;
    let mut acl_tokens = tx.open_table(ACL_TOKENS).map_err(db)?;
    let mut alerts = tx.open_table(ALERTS).map_err(db)?;
    let mut silences = tx.open_table(SILENCES).map_err(db)?;
    let mut volumes = tx.open_table(VOLUMES).map_err(db)?;
    for d in dirty {
        match d {
            Dirty::Node(id) => put(&mut nodes, id.as_str(), catalog.nodes.get(id).map(NodeRecord::of))?,
            Dirty::Service(id, key) => {
                let r = catalog.nodes.get(id).and_then(|n| n.services.get(key)).map(ServiceRecord::of);
                put(&mut services, (id.as_str(), key.as_str()), r)?
            }
            Dirty::Check(id, key) => {
                let r = catalog.nodes.get(id).and_then(|n| n.checks.get(key)).map(CheckRecord::of);
                put(&mut checks, (id.as_str(), key.as_str()), r)?
            }
            Dirty::Job(id) => put(&mut jobs, id.as_str(), catalog.work.jobs.get(id).map(JobRow::of))?,
            Dirty::JobVersion(id, v) => {
                let key = (id.clone(), *v);
                let at = catalog.work.history_ms.get(&key).copied().unwrap_or(0);
                let r = catalog.work.history.get(&key).map(|spec| JobVersionRow::of(spec, at));
                put(&mut versions, (id.as_str(), *v), r)?
            }
            Dirty::Alloc(id) => put(&mut allocs, id.as_str(), catalog.work.allocs.get(id).map(|a| AllocRecord::of(a)))?,
            Dirty::Kv(key) => put(&mut kv, key.as_str(), catalog.kv.entries.get(key).map(|e| KvRecord::of(e)))?,
            Dirty::Var(path) => {
                put(&mut vars, path.as_str(), catalog.vars.entries.get(path).map(|v| VarRecord::of(v)))?
            }
            Dirty::AclPolicy(name) => {
                put(&mut acl_policies, name.as_str(), catalog.acl.policies.get(name).map(|p| AclPolicyRecord::of(p)))?
            }
            Dirty::AclToken(a) => {
                put(&mut acl_tokens, a.as_str(), catalog.acl.tokens.get(a).map(|t| AclTokenRecord::of(t)))?
            }
            Dirty::AlertState => put(&mut alerts, ALERT_STATE_KEY, Some(AlertStateRecord::of(&catalog.alerts.state)))?,
            Dirty::Silence(id) => {
                put(&mut silences, id.as_str(), catalog.alerts.silences.get(id).map(SilenceRecord::of))?
            }
            Dirty::Volume(name) => {
                put(&mut volumes, name.as_str(), catalog.volumes.entries.get(name).map(|v| VolumeRecord::of(v)))?
            }
            Dirty::AclBootstrap => {
                let mut meta = tx.open_table(META).map_err(db)?;
                match catalog.acl.bootstrapped {
                    Some(at) => drop(meta.insert(ACL_BOOTSTRAP_KEY, at).map_err(db)?),
                    None => drop(meta.remove(ACL_BOOTSTRAP_KEY).map_err(db)?),
                }
            }
        }
    }
    tx.open_table(META).map_err(db)?.insert(INDEX_KEY, catalog.index).map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::state::{JobUpdate, NodeUpdate, Update};
    use rabble_shared::msg::ServiceRegistration;

    #[test]
    fn what_is_committed_is_what_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut cat) = Store::open(dir.path()).unwrap();
        assert_eq!(cat, Catalog::default());
        let n = NodeId::new("pi").unwrap();
        let k = TopicId::new("web").unwrap();
        let reg = ServiceRegistration {
            id: "web".into(),
            name: "web".into(),
            tags: vec!["a".into()],
            address: None,
            port: Some(1),
            meta: Default::default(),
            source: String::new(),
        };
        let mut dirty = cat.apply(Update::Node(n.clone(), NodeUpdate::Service(k.clone(), Some(reg)))).dirty;
        dirty.extend(cat.apply(Update::Node(n.clone(), NodeUpdate::Offline)).dirty);
        dirty.extend(cat.apply(Update::Node(n.clone(), NodeUpdate::Drain(Some(99)))).dirty);
        let spec = crate::jobspec::parse(
            "j.hcl",
            "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n }\n }\n}\n",
            &Default::default(),
        )
        .unwrap()
        .job;
        let register = JobUpdate::Register { spec: Box::new(spec), group_hashes: [("g".into(), 7)].into(), at_ms: 3 };
        dirty.extend(cat.apply(Update::Job("j".into(), register)).dirty);
        use crate::catalog::kv::KvUpdate;
        for (k, v) in [("app/db", "postgres://db"), ("app/empty", "")] {
            let set = KvUpdate::Set { key: k.into(), value: v.into(), flags: 3, cas: None };
            dirty.extend(cat.apply(Update::Kv(set)).dirty);
        }
        cat.index = 7;
        cat.kv.index = 7; // a loaded store's last KV change is bounded by the catalog's index
        store.commit(&cat, &dirty, None).unwrap();
        drop(store);
        let (store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded, cat);
        assert_eq!(loaded.nodes[&n].reason, "offline");
        assert_eq!((loaded.nodes[&n].eligible, loaded.nodes[&n].drain_deadline_ms), (false, Some(99)));
        assert_eq!(loaded.work.jobs["j"].group_hashes["g"], 7);
        assert_eq!(loaded.work.history.len(), 1);
        assert_eq!(loaded.kv.entries["app/db"].value, b"postgres://db");
        let mut dirty = cat.apply(Update::Node(n.clone(), NodeUpdate::Service(k, None))).dirty;
        dirty.extend(cat.apply(Update::Kv(KvUpdate::Delete { key: "app/db".into(), recurse: false, cas: None })).dirty);
        store.commit(&cat, &dirty, None).unwrap();
        drop(store);
        let loaded = Store::open(dir.path()).unwrap().1;
        assert_eq!(loaded.instance_count(), 0);
        assert_eq!(loaded.kv.entries.keys().collect::<Vec<_>>(), vec!["app/empty"]);
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod migrate_tests;
