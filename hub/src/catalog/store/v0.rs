//! Reading a data dir written before storage records (format 0: the wire's JSON, node
//! state and scheduling as strings, KV and variables in a binary layout), for the one-time
//! migration to format 1. Nothing writes this format any more.

use super::{StoreError, db};
use crate::catalog::jobs::JobRecord;
use crate::catalog::state::{Catalog, Node, Work};
use rabble_shared::alloc::Allocation;
use rabble_shared::api::NodeStatus;
use rabble_shared::job::JobSpec;
use rabble_shared::msg::{self, CheckState, NodeFacts, ServiceRegistration};
use rabble_shared::{AllocId, NodeId, TopicId};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const NODES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("nodes");
const NODE_STATE: TableDefinition<'_, &str, &str> = TableDefinition::new("node_state");
const NODE_SCHED: TableDefinition<'_, &str, &str> = TableDefinition::new("node_sched");
const SERVICES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("services");
const CHECKS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("checks");
const JOBS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("jobs");
const JOB_VERSIONS: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("job_versions");
const ALLOCS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("allocs");
const KV: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("kv");
const VARS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("vars");

/// The tables format 0 had (besides `meta`, which format 1 keeps).
pub const TABLES: [&str; 10] =
    ["nodes", "node_state", "node_sched", "services", "checks", "jobs", "job_versions", "allocs", "kv", "vars"];

/// A job as format 0 stored it (the wire's versioned JSON of the hub's record).
#[derive(Serialize, Deserialize)]
struct JobV0 {
    spec: JobSpec,
    version: u64,
    stopped: bool,
    submit_ms: u64,
    group_hashes: BTreeMap<String, u64>,
}

impl msg::Payload for JobV0 {
    const WHAT: &'static str = "job record";
    const MAX_SIZE: usize = rabble_shared::job::MAX_JOB_SIZE;
}

/// Whether this database has anything in format 0's tables.
pub fn present(db_: &redb::Database) -> Result<bool, StoreError> {
    let tx = db_.begin_read().map_err(db)?;
    let list = tx.list_tables().map_err(db)?;
    Ok(list.into_iter().any(|t| TABLES.contains(&t.name())))
}

/// Reads everything format 0 kept (`index` from `meta`). Records that do not decode are
/// skipped with a warning, as format 0's own reader did.
pub fn load(tx: &WriteTransaction, index: u64) -> Result<Catalog, StoreError> {
    let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
    if let Ok(state) = tx.open_table(NODE_STATE) {
        for row in state.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let Ok(id) = NodeId::new(k.value()) else { continue };
            let (status, reason) = v.value().split_once(' ').unwrap_or((v.value(), ""));
            let status = if status == "up" { NodeStatus::Up } else { NodeStatus::Down };
            nodes.insert(id, Node { status, reason: reason.to_owned(), ..Node::new() });
        }
    }
    if let Ok(facts) = tx.open_table(NODES) {
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
    }
    if let Ok(sched) = tx.open_table(NODE_SCHED) {
        for row in sched.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            if let Some(node) = NodeId::new(k.value()).ok().and_then(|id| nodes.get_mut(&id)) {
                (node.eligible, node.drain_deadline_ms) = match v.value().strip_prefix("drain ") {
                    Some(d) => (false, d.parse().ok()),
                    None => (v.value() != "ineligible", None),
                };
            }
        }
    }
    if let Ok(services) = tx.open_table(SERVICES) {
        for row in services.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, s) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(s)) else { continue };
            match (nodes.get_mut(&id), msg::decode::<ServiceRegistration>(v.value())) {
                (Some(node), Ok(reg)) => drop(node.services.insert(key, reg)),
                (_, Err(e)) => tracing::warn!(node = n, service = s, error = %e, "skipping stored service"),
                (None, _) => {}
            }
        }
    }
    if let Ok(checks) = tx.open_table(CHECKS) {
        for row in checks.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (n, c) = k.value();
            let (Ok(id), Ok(key)) = (NodeId::new(n), TopicId::new(c)) else { continue };
            match (nodes.get_mut(&id), msg::decode::<CheckState>(v.value())) {
                (Some(node), Ok(st)) => drop(node.checks.insert(key, st)),
                (_, Err(e)) => tracing::warn!(node = n, check = c, error = %e, "skipping stored check"),
                (None, _) => {}
            }
        }
    }
    let mut work = Work::default();
    if let Ok(jobs) = tx.open_table(JOBS) {
        for row in jobs.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match msg::decode::<JobV0>(v.value()) {
                Ok(JobV0 { spec, version, stopped, submit_ms, group_hashes }) => {
                    let job = JobRecord { spec: spec.into(), version, stopped, submit_ms, group_hashes };
                    work.jobs.insert(k.value().to_owned(), job);
                }
                Err(e) => tracing::warn!(job = k.value(), error = %e, "skipping stored job"),
            }
        }
    }
    if let Ok(versions) = tx.open_table(JOB_VERSIONS) {
        for row in versions.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (id, version) = k.value();
            match msg::decode::<JobSpec>(v.value()) {
                Ok(spec) => drop(work.history.insert((id.to_owned(), version), spec.into())),
                Err(e) => tracing::warn!(job = id, version, error = %e, "skipping stored job version"),
            }
        }
    }
    if let Ok(allocs) = tx.open_table(ALLOCS) {
        for row in allocs.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            match (AllocId::new(k.value()), msg::decode::<Allocation>(v.value())) {
                (Ok(id), Ok(a)) => drop(work.allocs.insert(id, a.into())),
                (_, Err(e)) => tracing::warn!(alloc = k.value(), error = %e, "skipping stored allocation"),
                (Err(e), _) => tracing::warn!(alloc = k.value(), error = %e, "skipping stored allocation"),
            }
        }
    }
    let n = |b: &[u8], i: usize| b.get(i * 8..i * 8 + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    let mut entries = BTreeMap::new();
    if let Ok(kv) = tx.open_table(KV) {
        for row in kv.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let b = v.value();
            let entry = (|| {
                let value = b.get(24..)?.to_vec();
                Some(crate::catalog::kv::Entry {
                    flags: n(b, 0)?,
                    create_index: n(b, 1)?,
                    modify_index: n(b, 2)?,
                    value,
                })
            })();
            match entry {
                Some(e) => drop(entries.insert(k.value().to_owned(), Arc::new(e))),
                None => tracing::warn!(key = k.value(), "skipping a stored KV entry that does not decode"),
            }
        }
    }
    let mut vars = BTreeMap::new();
    if let Ok(table) = tx.open_table(VARS) {
        for row in table.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let b = v.value();
            let var = (|| {
                let sealed = b.get(32..)?.to_vec();
                Some(crate::catalog::vars::SealedVar {
                    create_index: n(b, 0)?,
                    modify_index: n(b, 1)?,
                    create_time: n(b, 2)?,
                    modify_time: n(b, 3)?,
                    sealed,
                })
            })();
            match var {
                Some(v) => drop(vars.insert(k.value().to_owned(), Arc::new(v))),
                None => tracing::warn!(path = k.value(), "skipping a stored variable that does not decode"),
            }
        }
    }
    let kv = crate::catalog::kv::Kv { entries: Arc::new(entries), index };
    let vars = crate::catalog::vars::Vars { entries: Arc::new(vars) };
    Ok(Catalog {
        nodes,
        work,
        index,
        kv,
        vars,
        acl: Default::default(),
        alerts: Default::default(),
        volumes: Default::default(),
    })
}
