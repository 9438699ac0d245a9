//! The catalog's durable form in redb. Records are stored in their wire encoding
//! (versioned JSON from `rabble_shared::msg`), so the store needs no format of its own.
//!
//! Invariant: only the catalog writer calls [`Store::commit`]; nothing else writes redb.

use super::state::{Catalog, Dirty, Node};
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::{self, CheckState, NodeFacts, ServiceRegistration};
use rabble_shared::{NodeId, TopicId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NODES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("nodes");
const NODE_STATE: TableDefinition<'_, &str, &str> = TableDefinition::new("node_state");
const SERVICES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("services");
const CHECKS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("checks");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
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
            nodes.insert(id, Node { status, reason, facts: None, services: BTreeMap::new(), checks: BTreeMap::new() });
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
        let index = tx.open_table(META).map_err(db)?.get(INDEX_KEY).map_err(db)?.map_or(0, |v| v.value());
        Ok(Catalog { nodes, index })
    }

    /// Writes the current value of every dirty key, and the index, in one transaction
    /// (one fsync for a whole batch).
    pub fn commit(&self, catalog: &Catalog, dirty: &[Dirty]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut nodes = tx.open_table(NODES).map_err(db)?;
            let mut state = tx.open_table(NODE_STATE).map_err(db)?;
            let mut services = tx.open_table(SERVICES).map_err(db)?;
            let mut checks = tx.open_table(CHECKS).map_err(db)?;
            for d in dirty {
                match d {
                    Dirty::Node(id) => match catalog.nodes.get(id) {
                        Some(n) => {
                            let facts = n.facts.as_ref().map(msg::encode).unwrap_or_default();
                            nodes.insert(id.as_str(), facts.as_slice()).map_err(db)?;
                            state.insert(id.as_str(), encode_state(n).as_str()).map_err(db)?;
                        }
                        None => {
                            nodes.remove(id.as_str()).map_err(db)?;
                            state.remove(id.as_str()).map_err(db)?;
                        }
                    },
                    Dirty::Service(id, key) => {
                        match catalog.nodes.get(id).and_then(|n| n.services.get(key)) {
                            Some(reg) => services.insert((id.as_str(), key.as_str()), msg::encode(reg).as_slice()),
                            None => services.remove((id.as_str(), key.as_str())).map(|_| None),
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

fn decode_state(s: &str) -> (NodeStatus, String) {
    let (status, reason) = s.split_once(' ').unwrap_or((s, ""));
    let status = if status == "up" { NodeStatus::Up } else { NodeStatus::Down };
    (status, reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::state::{NodeUpdate, Update};

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
        cat.index = 7;
        store.commit(&cat, &dirty).unwrap();
        drop(store);
        let (store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded, cat);
        assert_eq!(loaded.nodes[&n].reason, "offline");
        let dirty = cat.apply(Update::Node(n.clone(), NodeUpdate::Service(k, None))).dirty;
        store.commit(&cat, &dirty).unwrap();
        drop(store);
        assert_eq!(Store::open(dir.path()).unwrap().1.instance_count(), 0);
    }
}
