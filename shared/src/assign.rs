//! Work, hub → agent: each node's set of allocations to run, signed by the hub
//! (ed25519), on its retained `rabble/node/<node>/assignments` topic; and each
//! allocation's state, agent → hub, on `rabble/node/<node>/alloc/<alloc>`.
//!
//! The signature covers the exact bytes of `body` (the JSON of [`Assignments`]), so no
//! canonical form is needed. An agent runs nothing that is unsigned, signed by another
//! key, addressed to another node, or older (`seq`) than what it already has.

use crate::alloc::{AllocPort, ClientStatus};
use crate::id::{AllocId, NodeId};
use crate::job::{JobType, Service, Task, Volume};
use crate::msg::{DecodeError, Payload};
use crate::volume::Attach;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's assignments can be larger than other messages (many allocations): the
/// agent accepts packets this large on its assignments topic.
pub const MAX_ASSIGNMENTS: usize = 256 * 1024;

/// What travels on the topic: the body as signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// JSON of [`Assignments`].
    pub body: String,
    /// Base64 (standard, padded) ed25519 signature of `body`'s bytes.
    pub sig: String,
}

impl Payload for Signed {
    const WHAT: &'static str = "signed assignments";
    const MAX_SIZE: usize = MAX_ASSIGNMENTS;
}

/// Every allocation a node should run now; anything else it runs is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub node: NodeId,
    /// Rises with every change (the catalog index it was made at): an older set is a
    /// replay and is refused.
    pub seq: u64,
    pub issued_ms: u64,
    pub allocs: Vec<Assignment>,
}

/// One allocation to run: its group's tasks with everything resolved by placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub alloc: AllocId,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    pub job_id: String,
    pub job_version: u64,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub group: String,
    pub index: u32,
    pub ports: Vec<AllocPort>,
    pub network_mode: String,
    /// Group-level services (task services are in their task).
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub volumes: BTreeMap<String, Volume>,
    /// The hub's named volumes its `csi` volumes use, by `source`: where their data is
    /// (the node mounts an NFS export, or finds a host path).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub csi_volumes: BTreeMap<String, Attach>,
    /// The allocation's operator restarts (`Allocation::restart_asked`): a new number
    /// restarts its running tasks in place.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One task's state, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    /// `pending`, `running` or `dead`.
    pub state: String,
    pub failed: bool,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last thing that happened, in words (`started`, `exited with code 1`,
    /// `restarting in 15s`, the engine's error).
    #[serde(default)]
    pub event: String,
}

/// An allocation's state on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocState {
    pub id: AllocId,
    pub status: ClientStatus,
    #[serde(default)]
    pub reason: String,
    pub tasks: BTreeMap<String, TaskState>,
}

impl Payload for AllocState {
    const WHAT: &'static str = "allocation state";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.status == ClientStatus::Lost {
            return Err(DecodeError::Invalid("allocation state: `lost` is the hub's verdict, not a node's".into()));
        }
        if self.tasks.len() > 64 || self.reason.len() > 4096 {
            return Err(DecodeError::Invalid("allocation state: too many tasks or too long a reason".into()));
        }
        Ok(())
    }
}
