//! The catalog on disk: storage records — types of their own, not the wire's — each a
//! `{"v": 1, ...}` JSON document, one encoding for every kind (no ad-hoc strings, no
//! binary layouts). Wire types appear inside only through their serde form; a change to
//! one that old records would not survive bumps [`FORMAT`], and the hub's store migrates
//! (as it migrates a data dir written before these records existed, format 0).

use super::jobs::JobRecord;
use super::kv::Entry;
use super::node::{EXTERNAL, Node};
use super::vars::SealedVar;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rabble_shared::alloc::Allocation;
use rabble_shared::api::NodeStatus;
use rabble_shared::job::JobSpec;
use rabble_shared::msg::{CheckState, NodeFacts, ServiceRegistration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The store's format: 0 before storage records (wire JSON, strings, a binary KV form), 1 now.
pub const FORMAT: u64 = 1;
/// The version every record is written with.
const V: u32 = 1;

/// Why a stored record was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not a record: {0}")]
    Json(String),
    #[error("a version {0} record (this hub reads version {V}): written by a newer hub?")]
    Version(u32),
    #[error("{0}")]
    Field(String),
}

/// What a record says of itself.
pub trait Record: Serialize + for<'de> Deserialize<'de> {
    fn version(&self) -> u32;
}

pub fn encode<R: Record>(r: &R) -> Vec<u8> {
    serde_json::to_vec(r).unwrap_or_default()
}

pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, RecordError> {
    let r: R = serde_json::from_slice(bytes).map_err(|e| RecordError::Json(e.to_string()))?;
    match r.version() {
        V => Ok(r),
        v => Err(RecordError::Version(v)),
    }
}

macro_rules! record {
    ($($t:ty),*) => {$(
        impl Record for $t {
            fn version(&self) -> u32 {
                self.v
            }
        }
    )*};
}
record!(
    NodeRecord,
    ServiceRecord,
    CheckRecord,
    JobRow,
    JobVersionRow,
    AllocRecord,
    KvRecord,
    VarRecord,
    AclPolicyRecord,
    AclTokenRecord,
    AlertStateRecord,
    SilenceRecord,
    VolumeRecord
);

/// Who keeps a node's state: its agent, or the Consul API (an external node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Agent,
    External,
}

/// A node without its services and checks (records of their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub v: u32,
    pub kind: NodeKind,
    pub status: NodeStatus,
    pub reason: String,
    pub eligible: bool,
    pub drain_deadline_ms: Option<u64>,
    pub facts: Option<NodeFacts>,
    /// When the status last changed (the scheduler's lost grace counts from it; every
    /// replica must agree). Absent in records written before 0.3: 0.
    #[serde(default)]
    pub status_since_ms: u64,
}

impl NodeRecord {
    pub fn of(n: &Node) -> NodeRecord {
        NodeRecord {
            v: V,
            kind: if n.is_external() { NodeKind::External } else { NodeKind::Agent },
            status: n.status,
            reason: n.reason.clone(),
            eligible: n.eligible,
            drain_deadline_ms: n.drain_deadline_ms,
            facts: n.facts.clone(),
            status_since_ms: n.status_since_ms,
        }
    }

    /// The node (services and checks are added from their own records).
    pub fn into_node(self) -> Result<Node, RecordError> {
        if self.kind == NodeKind::External && self.facts.as_ref().is_none_or(|f| f.agent_version != EXTERNAL) {
            return Err(RecordError::Field("an external node without its Consul-registered facts".into()));
        }
        Ok(Node {
            status: self.status,
            reason: self.reason,
            facts: self.facts,
            eligible: self.eligible,
            drain_deadline_ms: self.drain_deadline_ms,
            status_since_ms: self.status_since_ms,
            ..Node::new()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub v: u32,
    pub registration: ServiceRegistration,
}

impl ServiceRecord {
    pub fn of(r: &ServiceRegistration) -> ServiceRecord {
        ServiceRecord { v: V, registration: r.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub v: u32,
    pub state: CheckState,
}

impl CheckRecord {
    pub fn of(s: &CheckState) -> CheckRecord {
        CheckRecord { v: V, state: s.clone() }
    }
}

/// A job: its current spec and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub v: u32,
    pub spec: JobSpec,
    pub version: u64,
    pub stopped: bool,
    pub submit_ms: u64,
    pub group_hashes: BTreeMap<String, u64>,
}

impl JobRow {
    pub fn of(j: &JobRecord) -> JobRow {
        JobRow {
            v: V,
            spec: (*j.spec).clone(),
            version: j.version,
            stopped: j.stopped,
            submit_ms: j.submit_ms,
            group_hashes: j.group_hashes.clone(),
        }
    }

    pub fn into_job(self) -> JobRecord {
        let JobRow { spec, version, stopped, submit_ms, group_hashes, .. } = self;
        JobRecord { spec: spec.into(), version, stopped, submit_ms, group_hashes }
    }
}

/// One of a job's earlier versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobVersionRow {
    pub v: u32,
    pub spec: JobSpec,
    /// When the version was submitted (ms); absent in rows written before 0.3: 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub submit_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl JobVersionRow {
    pub fn of(spec: &JobSpec, submit_ms: u64) -> JobVersionRow {
        JobVersionRow { v: V, spec: spec.clone(), submit_ms }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocRecord {
    pub v: u32,
    pub alloc: Allocation,
}

impl AllocRecord {
    pub fn of(a: &Allocation) -> AllocRecord {
        AllocRecord { v: V, alloc: a.clone() }
    }
}

/// A KV entry; the value in base64 (any bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvRecord {
    pub v: u32,
    pub flags: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub value: String,
}

impl KvRecord {
    pub fn of(e: &Entry) -> KvRecord {
        KvRecord {
            v: V,
            flags: e.flags,
            create_index: e.create_index,
            modify_index: e.modify_index,
            value: STANDARD.encode(&e.value),
        }
    }

    pub fn into_entry(self) -> Result<Entry, RecordError> {
        let value = STANDARD.decode(&self.value).map_err(|e| RecordError::Field(format!("value: {e}")))?;
        Ok(Entry { value, flags: self.flags, create_index: self.create_index, modify_index: self.modify_index })
    }
}

/// A variable: its items sealed (never clear text), in base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarRecord {
    pub v: u32,
    pub sealed: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: u64,
    pub modify_time: u64,
}

impl VarRecord {
    pub fn of(s: &SealedVar) -> VarRecord {
        VarRecord {
            v: V,
            sealed: STANDARD.encode(&s.sealed),
            create_index: s.create_index,
            modify_index: s.modify_index,
            create_time: s.create_time,
            modify_time: s.modify_time,
        }
    }

    pub fn into_var(self) -> Result<SealedVar, RecordError> {
        let sealed = STANDARD.decode(&self.sealed).map_err(|e| RecordError::Field(format!("sealed: {e}")))?;
        Ok(SealedVar {
            sealed,
            create_index: self.create_index,
            modify_index: self.modify_index,
            create_time: self.create_time,
            modify_time: self.modify_time,
        })
    }
}

/// An ACL policy (keyed by its name): its rules as written, read again when loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclPolicyRecord {
    pub v: u32,
    pub description: String,
    pub rules: String,
}

impl AclPolicyRecord {
    pub fn of(p: &crate::acl::Policy) -> AclPolicyRecord {
        AclPolicyRecord { v: V, description: p.description.clone(), rules: p.text.clone() }
    }

    pub fn into_policy(self, name: &str) -> Result<crate::acl::Policy, RecordError> {
        crate::acl::Policy::new(name, &self.description, &self.rules).map_err(|e| RecordError::Field(e.to_string()))
    }
}

/// An ACL token (keyed by its accessor): the SHA-256 of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclTokenRecord {
    pub v: u32,
    pub secret_sha256: String,
    pub description: String,
    pub policies: Vec<String>,
    pub management: bool,
    pub create_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

impl AclTokenRecord {
    pub fn of(t: &crate::acl::Token) -> AclTokenRecord {
        AclTokenRecord {
            v: V,
            secret_sha256: t.secret_sha256.clone(),
            description: t.description.clone(),
            policies: t.policies.clone(),
            management: t.management,
            create_ms: t.create_ms,
            expires_ms: t.expires_ms,
        }
    }

    pub fn into_token(self, accessor: &str) -> crate::acl::Token {
        crate::acl::Token {
            accessor: accessor.to_owned(),
            secret_sha256: self.secret_sha256,
            description: self.description,
            policies: self.policies,
            management: self.management,
            create_ms: self.create_ms,
            expires_ms: self.expires_ms,
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;

/// The alert task's tracker and dispatcher (one record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStateRecord {
    pub v: u32,
    pub state: crate::alert::book::AlertState,
}

impl AlertStateRecord {
    pub fn of(s: &crate::alert::book::AlertState) -> AlertStateRecord {
        AlertStateRecord { v: V, state: s.clone() }
    }
}

/// A silence (keyed by its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    pub v: u32,
    pub silence: crate::alert::group::Silence,
}

impl SilenceRecord {
    pub fn of(s: &crate::alert::group::Silence) -> SilenceRecord {
        SilenceRecord { v: V, silence: s.clone() }
    }
}

/// A named volume (keyed by its name): its own fields, not the API's `VolumeSpec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub v: u32,
    /// `nfs`, `host` or `local`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    pub create_ms: u64,
}

impl VolumeRecord {
    pub fn of(v: &super::volumes::Volume) -> VolumeRecord {
        use rabble_shared::volume::Backing;
        let (kind, server, path, options, nodes) = match &v.spec.backing {
            Backing::Nfs { server, path, options } => ("nfs", server.clone(), path.clone(), options.clone(), vec![]),
            Backing::Host { path, nodes } => ("host", String::new(), path.clone(), String::new(), nodes.clone()),
            Backing::Local { node, path } => ("local", String::new(), path.clone(), String::new(), vec![node.clone()]),
        };
        VolumeRecord { v: V, kind: kind.into(), server, path, options, nodes, create_ms: v.create_ms }
    }

    pub fn into_volume(self, name: &str) -> Result<super::volumes::Volume, RecordError> {
        use rabble_shared::volume::{Backing, VolumeSpec};
        let backing = match self.kind.as_str() {
            "nfs" => Backing::Nfs { server: self.server, path: self.path, options: self.options },
            "host" => Backing::Host { path: self.path, nodes: self.nodes },
            "local" => Backing::Local { node: self.nodes.into_iter().next().unwrap_or_default(), path: self.path },
            other => return Err(RecordError::Field(format!("volume {name}: kind {other:?}"))),
        };
        Ok(super::volumes::Volume { spec: VolumeSpec { name: name.to_owned(), backing }, create_ms: self.create_ms })
    }
}
