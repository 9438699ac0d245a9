//! Allocations: one placement of a job's task group on a node, as the hub keeps it
//! (durable, through the writer) and as `rabble alloc status` shows it. Nomad's words
//! for the states: desired `run`/`stop`; client `pending`, `running`, `complete`,
//! `failed`, `lost`.

use crate::NodeId;
use crate::id::AllocId;
use crate::job::Resources;
use serde::{Deserialize, Serialize};

/// What the hub wants of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    Run,
    Stop,
}

/// What the node last said about an allocation (`lost`: the hub's verdict when the
/// node went down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    Pending,
    Running,
    Complete,
    Failed,
    Lost,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Pending => "pending",
            ClientStatus::Running => "running",
            ClientStatus::Complete => "complete",
            ClientStatus::Failed => "failed",
            ClientStatus::Lost => "lost",
        }
    }

    /// Finished for good: nothing more will happen to it on its node.
    pub fn is_terminal(self) -> bool {
        matches!(self, ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost)
    }
}

/// A host port given to an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocPort {
    pub label: String,
    /// The port on the node.
    pub value: u16,
    /// The port inside the container (`to`), when mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u16>,
}

/// One allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: AllocId,
    /// Nomad's name: `<job>.<group>[<index>]`.
    pub name: String,
    pub job_id: String,
    /// The job version it runs; a newer version replaces it.
    pub job_version: u64,
    /// A fingerprint of the group it was placed from: a new job version whose group
    /// has the same one updates it in place instead of replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<u64>,
    pub group: String,
    pub index: u32,
    pub node: NodeId,
    pub desired: DesiredStatus,
    /// Why the hub wants what it wants (`scaled down`, `job stopped`, `node drained`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desired_reason: String,
    pub client_status: ClientStatus,
    /// The node's (or the hub's) words for the status: an exit code, an engine error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_reason: String,
    pub ports: Vec<AllocPort>,
    /// What it reserves on its node: the sum of its tasks'.
    pub resources: Resources,
    pub create_ms: u64,
    pub modify_ms: u64,
    /// The allocation this one replaces (rescheduled or lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<AllocId>,
    /// When earlier allocations in this chain were rescheduled (ms), for the
    /// `reschedule` policy's attempts-per-interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reschedule_times_ms: Vec<u64>,
}

impl Allocation {
    /// Counts against its node's resources and ports: wanted and not finished.
    pub fn holds_resources(&self) -> bool {
        self.desired == DesiredStatus::Run && !self.client_status.is_terminal()
    }
}

/// `<job>.<group>[<index>]`.
pub fn alloc_name(job: &str, group: &str, index: u32) -> String {
    format!("{job}.{group}[{index}]")
}

impl crate::msg::Payload for Allocation {
    const WHAT: &'static str = "allocation";
}
