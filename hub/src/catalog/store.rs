//! The catalog's durable form in redb. Records are stored in their wire encoding
//! (versioned JSON from `rabble_shared::msg`), so the store needs no format of its own.
//!
//! Invariant: only the catalog writer calls [`Store::commit`]; nothing else writes redb.

use super::state::{Catalog, Dirty, Node, Work};
use rabble_shared::alloc::Allocation;
use rabble_shared::api::NodeStatus;
use rabble_shared::job::{JobRecord, JobSpec};
use rabble_shared::msg::{self, CheckState, NodeFacts, ServiceRegistration};
use rabble_shared::{AllocId, NodeId, TopicId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NODES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("nodes");
const NODE_STATE: TableDefinition<'_, &str, &str> = TableDefinition::new("node_state");
const SERVICES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("services");
const CHECKS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("checks");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// A node's scheduling state: `eligible`, `ineligible` or `drain <deadline ms>`.
const NODE_SCHED: TableDefinition<'_, &str, &str> = TableDefinition::new("node_sched");
const JOBS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("jobs");
const JOB_VERSIONS: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("job_versions");
const ALLOCS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("allocs");
/// KV entries: `kv::encode_entry` (indexes, flags, then the value's bytes).
const KV: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("kv");
/// Variables: `vars::encode` (indexes, times, then the sealed items: never clear text).
const VARS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("vars");
const INDEX_KEY: &str = "index";
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
    /// Opens (or creates) `<data_dir>/catalog.redb` and loads the catalog from it.
    /// Records that no longer decode are skipped with a warning, never fatal.
    pub fn open(data_dir: &Path) -> Result<(Store, Catalog), StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::Dir { path: data_dir.to_owned(), error: source })?;
        let path = data_dir.join("catalog.redb");
        let database = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::Open { path: path.clone(), error: e.into() })?;
        let store = Store { db: database };
        // Make sure every table exists, so a read of a fresh file works.
        let tx = store.db.begin_write().map_err(db)?;
        {
            tx.open_table(NODES).map_err(db)?;
            tx.open_table(NODE_STATE).map_err(db)?;
            tx.open_table(SERVICES).map_err(db)?;
            tx.open_table(CHECKS).map_err(db)?;
            tx.open_table(META).map_err(db)?;
            tx.open_table(NODE_SCHED).map_err(db)?;
            tx.open_table(JOBS).map_err(db)?;
            tx.open_table(JOB_VERSIONS).map_err(db)?;
            tx.open_table(ALLOCS).map_err(db)?;
            tx.open_table(KV).map_err(db)?;
            tx.open_table(VARS).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        let catalog = store.load()?;
        Ok((store, catalog))
    }

    /// Reads the whole durable catalog.
    pub fn load(&self) -> Result<Catalog, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
        let state = tx.open_table(NODE_STATE).map_err(db)?;
        for row in state.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let Ok(id) = NodeId::new(k.value()) else { continue };
            let (status, reason) = decode_state(v.value());
            nodes.insert(id, Node { status, reason, ..Node::new() });
        }
        let facts = tx.open_table(NODES).map_err(db)?;
        for row in facts.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            if let Some(node) = NodeId::new(k.value()).ok().and_then(|id| nodes.get_mut(&id)) {
                match msg::decode::<NodeFacts>(v.value()) {
                    Ok(f) => node.facts = Some(f),
                    Err(msg::DecodeError::Empty) => {}
                    Err(e) => tracing::warn!(node = k.value(), error = %e, "skipping stored node facts"),
                }
            }
        }
        let services = tx.open_table(SERVICES).map_err(db)?;
        for row in services.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, s) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(s)) else { continue };
            match (nodes.get_mut(&id), msg::decode::<ServiceRegistration>(v.value())) {
                (Some(node), Ok(reg)) => {
                    node.services.insert(key, reg);
                }
                (_, Err(e)) => tracing::warn!(node = n, service = s, error = %e, "skipping stored service"),
                (None, _) => {}
            }
        }
        let checks = tx.open_table(CHECKS).map_err(db)?;
        for row in checks.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, c) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(c)) else { continue };
            match (nodes.get_mut(&id), msg::decode::<CheckState>(v.value())) {
                (Some(node), Ok(st)) => {
                    node.checks.insert(key, st);
                }
                (_, Err(e)) => tracing::warn!(node = n, check = c, error = %e, "skipping stored check"),
                (None, _) => {}
            }
        }
        let sched = tx.open_table(NODE_SCHED).map_err(db)?;
        for row in sched.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            if let Some(node) = NodeId::new(k.value()).ok().and_then(|id| nodes.get_mut(&id)) {
                (node.eligible, node.drain_deadline_ms) = decode_sched(v.value());
            }
        }
        let index = tx.open_table(META).map_err(db)?.get(INDEX_KEY).map_err(db)?.map_or(0, |v| v.value());
        let work = load_work(&tx)?;
        let mut entries = BTreeMap::new();
        for row in tx.open_table(KV).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match super::kv::decode_entry(v.value()) {
                Some(e) => {
                    entries.insert(k.value().to_owned(), std::sync::Arc::new(e));
                }
                None => tracing::warn!(key = k.value(), "skipping a stored KV entry that does not decode"),
            }
        }
        // The last delete's index is not kept: the catalog's bounds it.
        let kv = super::kv::Kv { entries: std::sync::Arc::new(entries), index };
        let mut vars = BTreeMap::new();
        for row in tx.open_table(VARS).map_err(db)?.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match super::vars::decode(v.value()) {
                Some(e) => {
                    vars.insert(k.value().to_owned(), std::sync::Arc::new(e));
                }
                None => tracing::warn!(path = k.value(), "skipping a stored variable that does not decode"),
            }
        }
        let vars = super::vars::Vars { entries: std::sync::Arc::new(vars) };
        Ok(Catalog { nodes, work, index, kv, vars })
    }

    /// Writes the current value of every dirty key, and the index, in one transaction
    /// (one fsync for a whole batch). Only the catalog's writer commits: the compiler
    /// keeps it so (`pub(in crate::catalog)`).
    pub(in crate::catalog) fn commit(&self, catalog: &Catalog, dirty: &[Dirty]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut nodes = tx.open_table(NODES).map_err(db)?;
            let mut state = tx.open_table(NODE_STATE).map_err(db)?;
            let mut services = tx.open_table(SERVICES).map_err(db)?;
            let mut checks = tx.open_table(CHECKS).map_err(db)?;
            let mut sched = tx.open_table(NODE_SCHED).map_err(db)?;
            let mut jobs = tx.open_table(JOBS).map_err(db)?;
            let mut versions = tx.open_table(JOB_VERSIONS).map_err(db)?;
            let mut allocs = tx.open_table(ALLOCS).map_err(db)?;
            let mut kv = tx.open_table(KV).map_err(db)?;
            let mut vars = tx.open_table(VARS).map_err(db)?;
            for d in dirty {
                match d {
                    Dirty::Node(id) => match catalog.nodes.get(id) {
                        Some(n) => {
                            let facts = n.facts.as_ref().map(msg::encode).unwrap_or_default();
                            nodes.insert(id.as_str(), facts.as_slice()).map_err(db)?;
                            state.insert(id.as_str(), encode_state(n).as_str()).map_err(db)?;
                            sched.insert(id.as_str(), encode_sched(n).as_str()).map_err(db)?;
                        }
                        None => {
                            nodes.remove(id.as_str()).map_err(db)?;
                            state.remove(id.as_str()).map_err(db)?;
                            sched.remove(id.as_str()).map_err(db)?;
                        }
                    },
                    Dirty::Job(id) => {
                        match catalog.work.jobs.get(id) {
                            Some(j) => jobs.insert(id.as_str(), msg::encode(j).as_slice()),
                            None => jobs.remove(id.as_str()).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::JobVersion(id, v) => {
                        match catalog.work.history.get(&(id.clone(), *v)) {
                            Some(spec) => versions.insert((id.as_str(), *v), msg::encode(spec).as_slice()),
                            None => versions.remove((id.as_str(), *v)).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::Alloc(id) => {
                        match catalog.work.allocs.get(id) {
                            Some(a) => allocs.insert(id.as_str(), msg::encode(a).as_slice()),
                            None => allocs.remove(id.as_str()).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::Service(id, key) => {
                        match catalog.nodes.get(id).and_then(|n| n.services.get(key)) {
                            Some(reg) => services.insert((id.as_str(), key.as_str()), msg::encode(reg).as_slice()),
                            None => services.remove((id.as_str(), key.as_str())).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::Kv(key) => {
                        match catalog.kv.entries.get(key) {
                            Some(e) => kv.insert(key.as_str(), super::kv::encode_entry(e).as_slice()),
                            None => kv.remove(key.as_str()).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::Var(path) => {
                        match catalog.vars.entries.get(path) {
                            Some(v) => vars.insert(path.as_str(), super::vars::encode(v).as_slice()),
                            None => vars.remove(path.as_str()).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                    Dirty::Check(id, key) => {
                        match catalog.nodes.get(id).and_then(|n| n.checks.get(key)) {
                            Some(st) => checks.insert((id.as_str(), key.as_str()), msg::encode(st).as_slice()),
                            None => checks.remove((id.as_str(), key.as_str())).map(|_| None),
                        }
                        .map_err(db)?;
                    }
                }
            }
            tx.open_table(META).map_err(db)?.insert(INDEX_KEY, catalog.index).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }
}

fn encode_state(n: &Node) -> String {
    let s = if n.status == NodeStatus::Up { "up" } else { "down" };
    format!("{s} {}", n.reason)
}

fn encode_sched(n: &Node) -> String {
    match (n.eligible, n.drain_deadline_ms) {
        (_, Some(d)) => format!("drain {d}"),
        (true, None) => "eligible".into(),
        (false, None) => "ineligible".into(),
    }
}

fn decode_sched(s: &str) -> (bool, Option<u64>) {
    match s.strip_prefix("drain ") {
        Some(d) => (false, d.parse().ok()),
        None => (s != "ineligible", None),
    }
}

/// Jobs, their history and allocations. A record that no longer decodes is skipped
/// with a warning (never fatal: the hub must start).
fn load_work(tx: &redb::ReadTransaction) -> Result<Work, StoreError> {
    let mut work = Work::default();
    for row in tx.open_table(JOBS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        match msg::decode::<JobRecord>(v.value()) {
            Ok(j) => {
                work.jobs.insert(k.value().to_owned(), j);
            }
            Err(e) => tracing::warn!(job = k.value(), error = %e, "skipping stored job"),
        }
    }
    for row in tx.open_table(JOB_VERSIONS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let (id, version) = k.value();
        match msg::decode::<JobSpec>(v.value()) {
            Ok(spec) => {
                work.history.insert((id.to_owned(), version), spec);
            }
            Err(e) => tracing::warn!(job = id, version, error = %e, "skipping stored job version"),
        }
    }
    for row in tx.open_table(ALLOCS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        match (AllocId::new(k.value()), msg::decode::<Allocation>(v.value())) {
            (Ok(id), Ok(a)) => {
                work.allocs.insert(id, a);
            }
            (_, Err(e)) => tracing::warn!(alloc = k.value(), error = %e, "skipping stored allocation"),
            (Err(e), _) => tracing::warn!(alloc = k.value(), error = %e, "skipping stored allocation"),
        }
    }
    Ok(work)
}

fn decode_state(s: &str) -> (NodeStatus, String) {
    let (status, reason) = s.split_once(' ').unwrap_or((s, ""));
    let status = if status == "up" { NodeStatus::Up } else { NodeStatus::Down };
    (status, reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::state::{JobUpdate, NodeUpdate, Update};

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
        store.commit(&cat, &dirty).unwrap();
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
        store.commit(&cat, &dirty).unwrap();
        drop(store);
        let loaded = Store::open(dir.path()).unwrap().1;
        assert_eq!(loaded.instance_count(), 0);
        assert_eq!(loaded.kv.entries.keys().collect::<Vec<_>>(), vec!["app/empty"]);
    }
}
