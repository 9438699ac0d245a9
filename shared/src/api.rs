//! The hub's HTTP API shapes (JSON), shared by the hub and the `rabble` CLI.

use crate::alloc::Allocation;
use crate::health::Status;
use crate::job::JobType;
use crate::msg::{CheckState, Heartbeat, NodeFacts};
use crate::{AllocId, NodeId, TopicId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether the hub considers a node alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Up,
    Down,
    /// Only in the API's views, never in the catalog: the catalog has the node up, and the
    /// hub has not heard from it since it started (the node is within its restart grace).
    Unknown,
}

/// `GET /api/v1/nodes` returns a list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: NodeId,
    pub status: NodeStatus,
    /// Why the node is in its status: `online`, `heartbeat` (heard from again), `offline` (said so, or its
    /// Will fired), `heartbeat-timeout`, `hub-restarted` (unknown: not heard from since the hub started).
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<NodeFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// Milliseconds since the hub last heard from the node (`None`: not since the hub started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ago_ms: Option<u64>,
    pub services: usize,
    /// Whether the scheduler may place work here (`rabble node eligibility`).
    #[serde(default = "yes")]
    pub eligible: bool,
    /// A drain in progress: its deadline (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_deadline_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// One service instance with its checks, as `GET /api/v1/services` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    pub node: NodeId,
    pub node_status: NodeStatus,
    pub key: TopicId,
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    /// The instance address, falling back to the node's advertise address.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub meta: BTreeMap<String, String>,
    /// Aggregate of the checks; `critical` whenever the node is down.
    pub status: Status,
    pub checks: Vec<CheckState>,
}

/// `GET /api/v1/services` returns a list of these, sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub name: String,
    pub instances: Vec<InstanceView>,
}

/// `GET /api/v1/health`: the hub's own health and ingest counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HubHealth {
    pub version: String,
    pub broker: String,
    pub mqtt_connected: bool,
    pub nodes_up: usize,
    pub nodes_down: usize,
    pub services: usize,
    pub instances: usize,
    /// The catalog index: moves whenever the catalog changes.
    pub index: u64,
    pub ingest: IngestStats,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestStats {
    pub accepted: u64,
    pub rejected: u64,
    /// Rejections by reason (`bad-topic`, `bad-payload`, `too-large`, `bad-version`, ...).
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub commits: u64,
}

/// One line of `GET /api/v1/events` (newline-delimited JSON): a catalog change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time, milliseconds.
    pub ts_ms: u64,
    pub index: u64,
    /// The MQTT topic the change came from (or `hub` for the hub's own decisions).
    pub topic: String,
    /// A short human summary, e.g. `node pi3 down (heartbeat-timeout)`.
    pub summary: String,
}

/// `GET /api/v1/jobs` (a list) and `/api/v1/jobs/{id}` (one, with its allocations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub priority: u8,
    pub version: u64,
    /// Nomad's words: `pending` (nothing placed yet), `running`, `dead` (stopped, or
    /// all its work finished).
    pub status: String,
    pub stopped: bool,
    pub submit_ms: u64,
    /// For a periodic job: its next launch (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_launch_s: Option<i64>,
    /// For a parameterized job: its dispatched children, queued first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::job::dispatch::DispatchQueue>,
    pub groups: Vec<GroupSummary>,
    /// Blocks the job file had that Rabble does not run (`-ignore-unsupported`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<Allocation>,
}

/// Allocation counts of one task group, by client status, for the current version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub name: String,
    pub desired: u32,
    pub pending: u32,
    pub running: u32,
    pub complete: u32,
    pub failed: u32,
    pub lost: u32,
    /// Why the scheduler could not place the rest, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<String>,
}

/// The answer to `POST /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSubmitted {
    pub id: String,
    pub version: u64,
    /// False when the job was already running exactly this version.
    pub changed: bool,
    /// The catalog index the job is visible at.
    pub index: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The answer to `POST /api/v1/jobs/plan`: what running the job would do now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanView {
    pub id: String,
    /// `new`, `update` or `none`.
    pub change: String,
    pub version: u64,
    pub placements: Vec<PlannedAlloc>,
    pub stops: Vec<PlannedStop>,
    /// Allocations that carry on under the new version without a restart.
    pub in_place: u32,
    /// Per group: why it (or part of it) cannot be placed.
    pub unplaced: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Each template as a new allocation would render it now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplatePreview>,
    /// What changes from the running version, field by field (empty for a new job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
}

/// One field of a job that a new version changes (`groups[web].count`); `None` where the
/// field is added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
}

/// Whether a template renders against the catalog as it is (never its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatePreview {
    pub group: String,
    pub task: String,
    pub destination: String,
    /// `renders`, `waiting` (for data that does not exist yet) or `fails`.
    pub status: String,
    /// The size rendered, what it waits for, or why it fails.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAlloc {
    pub name: String,
    pub node: NodeId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStop {
    pub name: String,
    pub node: NodeId,
    pub reason: String,
}

/// `POST /api/v1/nodes/{id}/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// Start a drain (true) or end one (false).
    pub enable: bool,
    /// How long service work has before what is left is stopped (Nomad's default: 1 h).
    #[serde(default)]
    pub deadline_s: Option<u64>,
}

/// `POST /api/v1/nodes/{id}/eligibility`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityRequest {
    pub eligible: bool,
}

/// The body of every `/api/v1` answer that is not a success (status 4xx/5xx), and
/// the line `GET /api/v1/events` sends when a reader fell behind. Consul's and
/// Nomad's own endpoints (`/v1/...`) keep their shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// `GET /api/v1/jobs/{id}/versions` returns these, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobVersion {
    pub version: u64,
    pub job: crate::job::JobSpec,
    /// When it was submitted (ms since the epoch); absent for versions stored before 0.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_ms: Option<u64>,
    /// With `?diffs=true`: what it changed from the version before it, field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
}

/// The answer to `DELETE /api/v1/jobs/{id}[?purge=true]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStopped {
    pub id: String,
    /// The catalog index the stop is visible at.
    pub index: u64,
    /// False when the job was already stopped (or already purged).
    pub changed: bool,
}

/// `GET /api/v1/allocations/{id}` (by id or unique prefix): the allocation, and what its
/// templates wait for when they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationView {
    #[serde(flatten)]
    pub alloc: Allocation,
    /// What the allocation's templates wait for (data that does not exist yet, or a
    /// delivery to the node that was withheld and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_wait: Option<String>,
    /// The service instances it registered, with their checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<InstanceView>,
}

/// The answer to `POST /api/v1/nodes/{id}/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDrained {
    pub node: NodeId,
    /// The drain's deadline (ms since the epoch); `None`: the drain was ended.
    pub drain_deadline_ms: Option<u64>,
    pub index: u64,
}

/// The answer to `POST /api/v1/nodes/{id}/eligibility`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEligibility {
    pub node: NodeId,
    pub eligible: bool,
    pub index: u64,
}

/// The answer to `POST /api/v1/nodes/{id}/forget`: the node left the catalog with its
/// services and checks at `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeForgotten {
    pub node: NodeId,
    pub index: u64,
}

/// The answer to `POST /api/v1/allocations/{id}/restart`: its node restarts its running
/// tasks in place once it sees restart number `restart` (committed at `index`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocRestarted {
    pub id: AllocId,
    pub restart: u32,
    pub index: u64,
}

/// `POST /api/v1/jobs/{id}/revert`: run version `version` again (as a new version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertRequest {
    pub version: u64,
}

/// `POST /api/v1/nodes/{id}/join` (an empty body takes the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The token's lifetime as a Go duration (`24h`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The answer to `POST /api/v1/nodes/{id}/join`: the node's join token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub node: NodeId,
    pub join_token: String,
    pub ttl_secs: u64,
    /// The hub's assignment key (the node's `hub_key`).
    pub hub_key: String,
}

/// `GET /api/v1/certs`: the ACME certificates the lanes want (never a key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertsView {
    pub resolvers: Vec<String>,
    pub certs: Vec<CertStatus>,
    pub problems: Vec<String>,
}

/// One wanted certificate: when it expires, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertStatus {
    pub resolver: String,
    pub domains: Vec<String>,
    pub lanes: Vec<String>,
    /// Unix seconds; absent until issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
}

/// A variable as Nomad's `/v1/var/<path>` and `/v1/vars` show it (Nomad's casing):
/// `items` only where the caller asked for the variable itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VarMeta {
    pub namespace: String,
    pub path: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: u64,
    pub modify_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<BTreeMap<String, String>>,
}

/// An ACL token as the API shows it; `secret` only in the answer that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokenView {
    /// Public: names the token in lists, logs and events.
    pub accessor: String,
    /// The secret requests carry; shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub description: String,
    pub policies: Vec<String>,
    pub management: bool,
    pub create_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// `POST /api/v1/acl/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokenRequest {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub management: bool,
    /// A Go duration (`720h`); none: it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// An ACL policy: its rules as written (HCL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicyView {
    pub name: String,
    pub description: String,
    pub rules: String,
}

/// `PUT /api/v1/acl/policies/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicyRequest {
    #[serde(default)]
    pub description: String,
    pub rules: String,
}

/// What a delete answers: the name or accessor that went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: String,
}

/// `GET /api/v1/cluster` (and `rabble-hub cluster status`): the hub cluster as the hub
/// answering sees it. A single hub answers `clustered: false` and no members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub clustered: bool,
    /// The answering hub's member id.
    pub this: u64,
    pub leader: Option<u64>,
    pub term: u64,
    /// The last log index this hub applied, and the catalog index it reached.
    pub applied: Option<u64>,
    pub catalog_index: u64,
    pub members: Vec<ClusterMember>,
    /// Why writes cannot be made now, when they cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMember {
    pub id: u64,
    pub name: String,
    /// Where members reach it.
    pub addr: String,
    /// `leader`, `follower`, `learner` (joining) or `witness`.
    pub role: String,
    pub voter: bool,
    /// The last log index the leader knows it holds (answered by the leader only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    /// Milliseconds since the leader last heard from it (answered by the leader only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_ms: Option<u64>,
}
