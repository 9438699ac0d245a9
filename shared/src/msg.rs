//! Versioned MQTT payloads. Every JSON payload is an object whose first field is
//! `"v": 1`; decoding checks the version before anything else, so a future `v: 2`
//! publisher gets a clear "unknown version" error instead of a half-read message.
//! Within one version, fields may only be added as optional (readers ignore fields
//! they do not know).

use crate::health::Status;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The payload version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;
/// The largest payload the hub accepts on any Rabble topic.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The largest MQTT packet a valid message needs: the payload plus room for the topic
/// and headers. Clients and the embedded broker cap packets at this.
pub const MAX_PACKET: usize = MAX_PAYLOAD + 1024;
/// A check's output is cut to this many bytes (Consul keeps 4 KB).
pub const MAX_CHECK_OUTPUT: usize = 4096;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("payload is empty")]
    Empty,
    #[error("payload version {found} is not supported (this build reads v{WIRE_VERSION})")]
    UnknownVersion { found: u64 },
    #[error("payload has no numeric \"v\" version field")]
    NoVersion,
    #[error("payload is not valid JSON for {what}: {error}")]
    Json { what: &'static str, error: serde_json::Error },
    #[error("payload is invalid: {0}")]
    Invalid(String),
    #[error("availability payload must be \"online\" or \"offline\", got {0:?}")]
    BadAvailability(String),
}

/// A payload type of the wire, with the name used in error messages.
pub trait Payload: Serialize + DeserializeOwned {
    const WHAT: &'static str;
    /// The largest encoding accepted (MQTT payloads: [`MAX_PAYLOAD`]).
    const MAX_SIZE: usize = MAX_PAYLOAD;
    /// Checks invariants serde cannot express.
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct Probe {
    v: Option<serde_json::Value>,
}

/// Encodes a payload with its version.
pub fn encode<T: Payload>(body: &T) -> Vec<u8> {
    // Serialising plain data structs to a Vec cannot fail.
    serde_json::to_vec(&Envelope { v: WIRE_VERSION, body }).unwrap_or_default()
}

/// Decodes and validates a payload, checking size and version first.
pub fn decode<T: Payload>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > T::MAX_SIZE {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: T::MAX_SIZE });
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|source| DecodeError::Json { what: T::WHAT, error: source })?;
    match probe.v.as_ref().and_then(|v| v.as_u64()) {
        None => return Err(DecodeError::NoVersion),
        Some(v) if v != u64::from(WIRE_VERSION) => return Err(DecodeError::UnknownVersion { found: v }),
        Some(_) => {}
    }
    let body: T = serde_json::from_slice(bytes).map_err(|source| DecodeError::Json { what: T::WHAT, error: source })?;
    body.validate()?;
    Ok(body)
}

/// A node's or the hub's availability (plain text, not JSON, as MQTT tools expect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Online,
    Offline,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Online => crate::topic::ONLINE,
            Availability::Offline => crate::topic::OFFLINE,
        }
    }
    pub fn decode(bytes: &[u8]) -> Result<Availability, DecodeError> {
        match bytes {
            b"online" => Ok(Availability::Online),
            b"offline" => Ok(Availability::Offline),
            other => {
                Err(DecodeError::BadAvailability(String::from_utf8_lossy(&other[..other.len().min(64)]).into_owned()))
            }
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a node is: published retained after every connect and when it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// The node's name as configured (may differ from its topic id, e.g. `Pi3.lan`).
    pub name: String,
    pub hostname: String,
    /// `x86_64`, `aarch64`, `arm`, ...
    pub arch: String,
    pub os: OsFacts,
    pub cpus: u32,
    pub memory_bytes: u64,
    #[serde(default)]
    pub disks: Vec<DiskFacts>,
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The address other nodes and DNS should use for this node.
    pub advertise: String,
    pub agent_version: String,
    #[serde(default)]
    pub node_class: String,
    pub datacenter: String,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Task drivers the agent can use, by name (`docker`). Absent: the agent was built
    /// without them. Added in 0.1 without a version bump: older readers ignore it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drivers: BTreeMap<String, DriverFacts>,
    /// Host volumes the node offers to jobs (Nomad's client `host_volume`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_volumes: BTreeMap<String, HostVolume>,
    /// The CPU's total capacity in MHz (all cores), when the agent could read it;
    /// the scheduler assumes 1,000 MHz a core otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_total_mhz: Option<u64>,
    /// The HTTP lanes this node serves over TLS (`[[lane]] tls_listen`): the hub hands
    /// it the lanes' ACME certificates on `rabble/node/<node>/certs/<lane>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_lanes: Vec<String>,
    /// `addresses` by interface name (`eth0`, `wlan0`), for templates' `sockaddr
    /// "GetInterfaceIP \"eth0\""`. Added in 0.1 without a version bump.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// Where the agent keeps allocations' directories (`<alloc_dir>/<alloc>/<task>`),
    /// so the hub renders `NOMAD_TASK_DIR` and friends in templates as the task sees
    /// them. Added in 0.1 without a version bump.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alloc_dir: String,
    /// Network filesystems the node can mount for the hub's named volumes (`nfs`: the
    /// kernel has an NFSv4 client). Added in 0.1 without a version bump.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<String>,
}

/// A directory the node lends to jobs (`volume "x" { type = "host" source = "x" }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostVolume {
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
}

/// One task driver as the agent last saw it (Nomad's `Drivers` node attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverFacts {
    /// The driver answered (for Docker: the engine's API replied).
    pub healthy: bool,
    /// The engine's version, when healthy (`28.2.2`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Where the agent looked and, when unhealthy, why it failed.
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsFacts {
    pub name: String,
    pub version: String,
    pub kernel: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskFacts {
    pub mount: String,
    pub fs: String,
    pub total_bytes: u64,
}

impl Payload for NodeFacts {
    const WHAT: &'static str = "node facts";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.name.is_empty() {
            return Err(DecodeError::Invalid("node facts: name is empty".into()));
        }
        if self.meta.len() > 64 {
            return Err(DecodeError::Invalid("node facts: more than 64 meta pairs".into()));
        }
        if self.drivers.len() > 16 {
            return Err(DecodeError::Invalid("node facts: more than 16 drivers".into()));
        }
        if self.interfaces.len() > 32 {
            return Err(DecodeError::Invalid("node facts: more than 32 interfaces".into()));
        }
        Ok(())
    }
}

/// How a node is doing: published every heartbeat interval, not retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Counts up from 1 for each agent run; a reset means the agent restarted.
    pub seq: u64,
    /// Seconds the host has been up.
    pub uptime_s: u64,
    pub cpu_percent: f32,
    pub load: [f32; 3],
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    #[serde(default)]
    pub disks: Vec<DiskUse>,
    /// SoC temperature from the first thermal zone, where the board has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f32>,
    /// Raspberry Pi firmware throttling bits (`vcgencmd get_throttled`), where present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<Throttled>,
    /// Assignment messages this agent refused (unsigned, wrong key, another node's,
    /// replayed) since it started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub assignments_refused: u64,
    /// The node's counters and gauges for `/metrics` (node_exporter's), on one heartbeat in
    /// `metrics_interval` (10 s by default); the hub keeps the last ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<NodeMetrics>,
}

/// What node_exporter would say of the node, in its units, for what Rabble's heartbeat
/// does not carry already (load, memory used, disks, uptime, temperature are there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeMetrics {
    /// Seconds the CPUs spent in each mode since boot, summed over CPUs (`/proc/stat`):
    /// user, nice, system, idle, iowait, irq, softirq, steal.
    pub cpu_seconds: [f64; 8],
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    /// Bytes through each interface since boot (loopback and containers' veths left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetUse>,
    /// Each thermal zone (`/sys/class/thermal/thermal_zone<N>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thermal: Vec<ThermalZone>,
}

/// The CPU modes of [`NodeMetrics::cpu_seconds`], in order, as node_exporter names them.
pub const CPU_MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetUse {
    pub device: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThermalZone {
    pub zone: u32,
    /// The zone's type (`cpu-thermal`, `x86_pkg_temp`).
    #[serde(rename = "type")]
    pub kind: String,
    pub celsius: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUse {
    pub mount: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// Raspberry Pi throttling: the raw firmware word and its named bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throttled {
    pub raw: u32,
    pub flags: Vec<String>,
}

impl Throttled {
    /// Decodes the firmware's bit layout (bits 0-3 now, 16-19 since boot).
    pub fn from_raw(raw: u32) -> Throttled {
        const NAMES: [&str; 4] = ["under-voltage", "arm-freq-capped", "throttled", "soft-temp-limit"];
        let mut flags = Vec::new();
        for (bit, name) in NAMES.iter().enumerate() {
            if raw & (1 << bit) != 0 {
                flags.push((*name).to_owned());
            }
            if raw & (1 << (bit + 16)) != 0 {
                flags.push(format!("{name}-occurred"));
            }
        }
        Throttled { raw, flags }
    }
}

/// The most interfaces and thermal zones a heartbeat's metrics carry (bounded series per node).
pub const MAX_METRIC_ITEMS: usize = 32;

impl Payload for Heartbeat {
    const WHAT: &'static str = "heartbeat";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.disks.len() > MAX_METRIC_ITEMS {
            return Err(DecodeError::Invalid(format!("heartbeat: more than {MAX_METRIC_ITEMS} disks")));
        }
        if let Some(m) = &self.metrics
            && (m.net.len() > MAX_METRIC_ITEMS || m.thermal.len() > MAX_METRIC_ITEMS)
        {
            return Err(DecodeError::Invalid(format!(
                "heartbeat: more than {MAX_METRIC_ITEMS} interfaces or thermal zones"
            )));
        }
        Ok(())
    }
}

/// One service instance on one node, as a service file declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRegistration {
    /// The instance id, unique on its node (Consul's `id`, defaulting to the name).
    pub id: String,
    /// The service name DNS and the catalog group instances by.
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Empty means "the node's advertise address".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Where the definition came from (file path), for operators.
    #[serde(default)]
    pub source: String,
}

impl Payload for ServiceRegistration {
    const WHAT: &'static str = "service registration";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.name.is_empty() || self.id.is_empty() {
            return Err(DecodeError::Invalid("service: name and id must not be empty".into()));
        }
        if self.meta.len() > 64 {
            return Err(DecodeError::Invalid("service: more than 64 meta pairs".into()));
        }
        Ok(())
    }
}

/// The kind of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Http,
    Tcp,
    Script,
    Ttl,
}

/// A check's current state: published when its status or output changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    /// Consul's CheckID (e.g. `service:web` or a configured id).
    pub id: String,
    pub name: String,
    /// The instance id this check belongs to; `None` for a node-level check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    pub kind: CheckKind,
    pub status: Status,
    /// At most [`MAX_CHECK_OUTPUT`] bytes.
    #[serde(default)]
    pub output: String,
    /// Unix time of the status change, milliseconds.
    pub since_ms: u64,
}

impl Payload for CheckState {
    const WHAT: &'static str = "check state";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.id.is_empty() {
            return Err(DecodeError::Invalid("check: id is empty".into()));
        }
        if self.output.len() > MAX_CHECK_OUTPUT {
            return Err(DecodeError::Invalid(format!(
                "check: output is {} bytes, over {MAX_CHECK_OUTPUT}",
                self.output.len()
            )));
        }
        Ok(())
    }
}

/// The complete list of what a node currently registers, by topic id. Published
/// after the registrations themselves; the hub drops anything of that node not
/// listed (so nothing survives a missed deregistration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub services: Vec<crate::TopicId>,
    pub checks: Vec<crate::TopicId>,
}

impl Payload for Manifest {
    const WHAT: &'static str = "manifest";
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
