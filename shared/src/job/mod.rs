//! Jobs as Rabble stores and ships them: a Nomad job file parsed, checked and with
//! Nomad's defaults filled in (`rabble_hub::jobspec` makes them). The hub keeps them in
//! redb and hands tasks to agents inside signed assignments, so this is wire: every
//! field is here, durations are whole milliseconds, and the golden file pins the form.
//!
//! Runtime interpolations (`${attr.cpu.arch}`, `${NOMAD_PORT_http}`, `${meta.rack}`)
//! stay in the strings as written; placement and the agent resolve them.

pub mod dispatch;
pub mod env;
pub mod template;
pub use dispatch::{DispatchPayload, Parameterized, PayloadRule};
pub use template::{ChangeMode, TemplateSpec};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The scheduler a job asks for (Nomad's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    #[default]
    Service,
    Batch,
    System,
    Sysbatch,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Batch => "batch",
            JobType::System => "system",
            JobType::Sysbatch => "sysbatch",
        }
    }
}

/// One job, complete: what `rabble job run` submits and the hub stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub priority: u8,
    pub region: String,
    pub datacenters: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub constraints: Vec<Constraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<Periodic>,
    /// A template for `rabble job dispatch`: never placed itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameterized: Option<Parameterized>,
    pub groups: Vec<Group>,
    /// Blocks the file had that Rabble does not act on, accepted with
    /// `-ignore-unsupported` (`file:line: block path`), so `job status` can say so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// A placement rule: `attribute operator value`, Nomad's semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub attribute: String,
    pub operator: Operator,
    pub value: String,
}

/// Nomad's constraint operators, spelled as Nomad spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "regexp")]
    Regexp,
    #[serde(rename = "version")]
    Version,
    #[serde(rename = "semver")]
    Semver,
    #[serde(rename = "set_contains")]
    SetContains,
    #[serde(rename = "set_contains_any")]
    SetContainsAny,
    #[serde(rename = "is_set")]
    IsSet,
    #[serde(rename = "is_not_set")]
    IsNotSet,
    #[serde(rename = "distinct_hosts")]
    DistinctHosts,
    #[serde(rename = "distinct_property")]
    DistinctProperty,
}

impl Operator {
    /// Parses Nomad's spellings, aliases included (`==`, `is`, `not`).
    pub fn parse(s: &str) -> Option<Operator> {
        Some(match s {
            "=" | "==" | "is" => Operator::Eq,
            "!=" | "not" => Operator::Ne,
            "<" => Operator::Lt,
            "<=" => Operator::Le,
            ">" => Operator::Gt,
            ">=" => Operator::Ge,
            "regexp" => Operator::Regexp,
            "version" => Operator::Version,
            "semver" => Operator::Semver,
            "set_contains" | "set_contains_all" => Operator::SetContains,
            "set_contains_any" => Operator::SetContainsAny,
            "is_set" => Operator::IsSet,
            "is_not_set" => Operator::IsNotSet,
            "distinct_hosts" => Operator::DistinctHosts,
            "distinct_property" => Operator::DistinctProperty,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Regexp => "regexp",
            Operator::Version => "version",
            Operator::Semver => "semver",
            Operator::SetContains => "set_contains",
            Operator::SetContainsAny => "set_contains_any",
            Operator::IsSet => "is_set",
            Operator::IsNotSet => "is_not_set",
            Operator::DistinctHosts => "distinct_hosts",
            Operator::DistinctProperty => "distinct_property",
        }
    }
}

/// `periodic`: launch the job on a cron schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Periodic {
    pub crons: Vec<String>,
    pub time_zone: String,
    pub prohibit_overlap: bool,
    pub enabled: bool,
}

/// A task group: what is placed together on one node, `count` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub count: u32,
    pub constraints: Vec<Constraint>,
    pub network: Network,
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub reschedule: ReschedulePolicy,
    /// Rolling updates; `None` for batch and sysbatch jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    pub volumes: BTreeMap<String, Volume>,
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Network {
    /// `host` (default) or `bridge`.
    pub mode: String,
    pub ports: Vec<Port>,
}

/// `port "label" { static = 8080  to = 80 }`: no `static` means a dynamic host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub label: String,
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<String>,
}

/// A group `volume`: a host volume the node must offer, or (`csi`) a Rabble volume
/// (`rabble volume create`) of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: String,
    pub read_only: bool,
    /// `host` or `csi`.
    #[serde(rename = "type", default = "host", skip_serializing_if = "is_host")]
    pub kind: String,
    /// CSI's `access_mode` as written (`single-node-writer`, `multi-node-multi-writer`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_mode: String,
}

fn host() -> String {
    "host".into()
}

fn is_host(k: &String) -> bool {
    k == "host"
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub volume: String,
    pub destination: String,
    pub read_only: bool,
}

/// One process or container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    /// `docker`, `raw_exec` or `exec`.
    pub driver: String,
    /// The driver's `config` block as written (blocks become lists of objects).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub resources: Resources,
    pub kill_timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    pub services: Vec<Service>,
    pub constraints: Vec<Constraint>,
    pub volume_mounts: Vec<VolumeMount>,
    /// The task's own `restart`, else its group's, else Nomad's default for the job type.
    pub restart: RestartPolicy,
    pub meta: BTreeMap<String, String>,
    /// `template` blocks, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateSpec>,
    /// Where a dispatched job's payload goes under `local/` (and, in a child, the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_payload: Option<DispatchPayload>,
    /// Variable paths a `vault` block grants the task: the literal paths its templates'
    /// `secret` calls read (Rabble variables stand in for Vault).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_mhz: u32,
    pub memory_mb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max_mb: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Prestart,
    Poststart,
    Poststop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub hook: Hook,
    pub sidecar: bool,
}

/// A `service` block: registered in the catalog by the agent running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// A port label of the group's network, or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// `auto`, `host`, `driver` or `alloc`.
    pub address_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// For a group service: the task that runs its script checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    Http,
    Tcp,
    Script,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    #[serde(rename = "type")]
    pub kind: CheckType,
    pub name: String,
    /// HTTP path (`/health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A port label, or a number; default: the service's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default)]
    pub tls_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_status: Option<String>,
    #[serde(default)]
    pub success_before_passing: u32,
    #[serde(default)]
    pub failures_before_critical: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_restart: Option<CheckRestart>,
}

/// `check_restart`: restart the task after `limit` consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRestart {
    pub limit: u32,
    pub grace_ms: u64,
    pub ignore_warnings: bool,
}

/// What the agent does when a task exits or fails (Nomad's `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub attempts: u32,
    pub interval_ms: u64,
    pub delay_ms: u64,
    /// `fail`: the allocation fails after `attempts`; `delay`: wait out the interval.
    pub mode: RestartMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartMode {
    Fail,
    Delay,
}

/// What the hub does when an allocation fails (Nomad's `reschedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReschedulePolicy {
    pub attempts: u32,
    pub interval_ms: u64,
    pub delay_ms: u64,
    /// `constant`, `exponential` or `fibonacci`.
    pub delay_function: String,
    pub max_delay_ms: u64,
    pub unlimited: bool,
}

/// Rolling updates (Nomad's `update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStrategy {
    pub max_parallel: u32,
    /// `checks`, `task_states` or `manual`.
    pub health_check: String,
    pub min_healthy_time_ms: u64,
    pub healthy_deadline_ms: u64,
    pub progress_deadline_ms: u64,
    pub auto_revert: bool,
    pub canary: u32,
    pub stagger_ms: u64,
}

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

impl RestartPolicy {
    /// Nomad's default for a job type: service and system 2 attempts in 30 m, batch and
    /// sysbatch 3 in 24 h; delay 15 s; mode fail.
    pub fn default_for(kind: JobType) -> RestartPolicy {
        let (attempts, interval_ms) = match kind {
            JobType::Service | JobType::System => (2, 30 * MINUTE),
            JobType::Batch | JobType::Sysbatch => (3, 24 * HOUR),
        };
        RestartPolicy { attempts, interval_ms, delay_ms: 15_000, mode: RestartMode::Fail }
    }
}

impl ReschedulePolicy {
    /// Nomad's default: service unlimited, 30 s exponential to 1 h; batch once per
    /// 24 h after 5 s; system and sysbatch never (they are placed per node).
    pub fn default_for(kind: JobType) -> ReschedulePolicy {
        match kind {
            JobType::Service => ReschedulePolicy {
                attempts: 0,
                interval_ms: 0,
                delay_ms: 30_000,
                delay_function: "exponential".into(),
                max_delay_ms: HOUR,
                unlimited: true,
            },
            JobType::Batch => ReschedulePolicy {
                attempts: 1,
                interval_ms: 24 * HOUR,
                delay_ms: 5_000,
                delay_function: "constant".into(),
                max_delay_ms: 0,
                unlimited: false,
            },
            JobType::System | JobType::Sysbatch => ReschedulePolicy {
                attempts: 0,
                interval_ms: 0,
                delay_ms: 0,
                delay_function: "constant".into(),
                max_delay_ms: 0,
                unlimited: false,
            },
        }
    }
}

impl Default for UpdateStrategy {
    /// Nomad's: one at a time, healthy by checks for 10 s, 5 m to get healthy, 10 m
    /// of progress, no auto-revert, no canaries, 30 s stagger.
    fn default() -> Self {
        UpdateStrategy {
            max_parallel: 1,
            health_check: "checks".into(),
            min_healthy_time_ms: 10_000,
            healthy_deadline_ms: 5 * MINUTE,
            progress_deadline_ms: 10 * MINUTE,
            auto_revert: false,
            canary: 0,
            stagger_ms: 30_000,
        }
    }
}

impl Resources {
    /// Nomad's default: 100 MHz, 300 MB.
    pub const DEFAULT: Resources = Resources { cpu_mhz: 100, memory_mb: 300, memory_max_mb: None };
}

/// Nomad's default `kill_timeout`.
pub const DEFAULT_KILL_TIMEOUT_MS: u64 = 5_000;
/// Nomad's default `priority`.
pub const DEFAULT_PRIORITY: u8 = 50;

impl JobSpec {
    /// Every task of the job with its group.
    pub fn tasks(&self) -> impl Iterator<Item = (&Group, &Task)> {
        self.groups.iter().flat_map(|g| g.tasks.iter().map(move |t| (g, t)))
    }
}

/// Jobs arrive over HTTP and live in redb, not on MQTT: a generous limit.
pub const MAX_JOB_SIZE: usize = 1024 * 1024;

impl crate::msg::Payload for JobSpec {
    const WHAT: &'static str = "job";
    const MAX_SIZE: usize = MAX_JOB_SIZE;
}
