//! The catalog's in-memory state and the rules that change it. Pure: no IO, no
//! clock reads (callers pass time in), so every rule is unit-tested directly.
//!
//! An [`Update`] names what it changes (today: a node); [`Catalog::apply`] hands it
//! to the rules of that kind of record (`node.rs`) and gets back which durable keys
//! changed ([`Dirty`]) and a summary of each change for `rabble watch`.

pub use super::jobs::{AllocUpdate, JobUpdate, Work};
pub use super::node::{Node, NodeUpdate};
use rabble_shared::{AllocId, NodeId};
use std::collections::BTreeMap;

/// A validated change to the catalog.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Update {
    Node(NodeId, NodeUpdate),
    Job(String, JobUpdate),
    Alloc(AllocId, AllocUpdate),
    Kv(super::kv::KvUpdate),
    /// A KV transaction (`/v1/txn`): all its writes or none, in one commit.
    KvTxn(Vec<super::kv_txn::TxnOp>),
    Var(super::vars::VarUpdate),
    /// ACL policies and tokens (the API's door reads them).
    Acl(crate::acl::AclUpdate),
    /// Alerts: the leader's alert state, silences.
    Alert(crate::alert::book::AlertUpdate),
    /// Named volumes (`rabble volume`).
    Volume(super::volumes::VolumeUpdate),
}

impl Update {
    /// The node an update is about, if it is about one.
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Update::Node(n, _) => Some(n),
            Update::Job(..)
            | Update::Alloc(..)
            | Update::Kv(_)
            | Update::KvTxn(_)
            | Update::Var(_)
            | Update::Acl(_)
            | Update::Alert(_)
            | Update::Volume(_) => None,
        }
    }
}

/// A durable key the writer must persist after a change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dirty {
    Node(NodeId),
    Service(NodeId, rabble_shared::TopicId),
    Check(NodeId, rabble_shared::TopicId),
    Job(String),
    JobVersion(String, u64),
    Alloc(AllocId),
    Kv(String),
    Var(String),
    AclPolicy(String),
    AclToken(String),
    /// Whether (and at which index) the ACLs were bootstrapped.
    AclBootstrap,
    /// The alert task's tracker and dispatcher.
    AlertState,
    Silence(String),
    Volume(String),
}

/// The outcome of applying an update: which durable keys changed, and a summary of
/// each change for `rabble watch`.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub dirty: Vec<Dirty>,
    pub summaries: Vec<String>,
    /// A KV transaction's results or errors, for its caller.
    pub txn: Option<super::kv_txn::TxnOutcome>,
}

/// What one commit did ([`Catalog::apply_batch`]).
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub applied: Vec<Option<Applied>>,
    pub dirty: Vec<Dirty>,
}

/// The whole catalog. `index` moves on every durable change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub nodes: BTreeMap<NodeId, Node>,
    /// Jobs, their history and their allocations.
    pub work: Work,
    /// The KV store (shared between snapshots until it changes).
    pub kv: super::kv::Kv,
    /// Variables, sealed (never in clear in the catalog).
    pub vars: super::vars::Vars,
    /// ACL policies and tokens (secrets only as their SHA-256).
    pub acl: crate::acl::Acl,
    /// What the alert task tracked and sent, and the silences.
    pub alerts: crate::alert::book::AlertBook,
    /// Named volumes.
    pub volumes: super::volumes::Volumes,
    pub index: u64,
}

impl Catalog {
    /// Applies one update; an identical update applied twice changes nothing the
    /// second time (no dirty keys, so no disk write).
    pub fn apply(&mut self, u: Update) -> Applied {
        match u {
            Update::Node(id, nu) => super::node::apply(&mut self.nodes, id, nu),
            Update::Job(id, ju) => self.work.apply_job(id, ju),
            // Stamped with the index this batch's commit will have.
            Update::Kv(ku) => self.kv.apply(ku, self.index + 1),
            Update::KvTxn(ops) => {
                let (mut applied, outcome) = self.kv.txn(ops, self.index + 1);
                applied.txn = Some(outcome);
                applied
            }
            Update::Var(vu) => self.vars.apply(vu, self.index + 1),
            Update::Acl(au) => self.acl.apply(au, self.index + 1),
            Update::Alert(au) => self.alerts.apply(au),
            Update::Volume(vu) => self.volumes.apply(vu),
            Update::Alloc(id, au) => {
                let mut out = self.work.apply_alloc(id.clone(), au);
                // A finished allocation's services go with it, even when its node is
                // not there to deregister them (lost).
                if !out.dirty.is_empty()
                    && let Some(a) = self.work.allocs.get(&id).filter(|a| a.client_status.is_terminal())
                    && let Some(node) = self.nodes.get_mut(&a.node)
                {
                    let more = super::node::drop_alloc_services(node, &a.node, id.as_str());
                    out.dirty.extend(more.dirty);
                    out.summaries.extend(more.summaries);
                }
                out
            }
        }
    }

    /// One commit's updates, applied in order as the writer commits them: each update's
    /// outcome (`None` for an input that carries none), the durable keys to write (sorted,
    /// once each), and the index moved once if any changed. A node whose status changed
    /// is stamped `at_ms` — the caller's clock, read before: nothing here reads one, so
    /// every hub applying the same batches reaches the same catalog.
    pub fn apply_batch(&mut self, updates: Vec<Option<Update>>, at_ms: u64) -> Batch {
        let mut batch = Batch { applied: Vec::with_capacity(updates.len()), dirty: Vec::new() };
        for u in updates {
            let Some(u) = u else {
                batch.applied.push(None);
                continue;
            };
            let node = u.node().cloned();
            let before = node.as_ref().and_then(|n| self.nodes.get(n)).map(|n| n.status);
            let applied = self.apply(u);
            if let Some(n) = node.and_then(|n| self.nodes.get_mut(&n))
                && Some(n.status) != before
            {
                n.status_since_ms = at_ms;
            }
            batch.dirty.extend(applied.dirty.iter().cloned());
            batch.applied.push(Some(applied));
        }
        batch.dirty.sort();
        batch.dirty.dedup();
        if !batch.dirty.is_empty() {
            self.index += 1;
        }
        batch
    }

    /// How many distinct service names the catalog has.
    pub fn service_count(&self) -> usize {
        let names: std::collections::BTreeSet<&str> =
            self.nodes.values().flat_map(|n| n.services.values().map(|r| r.name.as_str())).collect();
        names.len()
    }

    pub fn instance_count(&self) -> usize {
        self.nodes.values().map(|n| n.services.len()).sum()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "replay_tests.rs"]
mod replay_tests;
