//! The hub's HTTP API shapes (JSON), shared by the hub and the `rabble` CLI.

use crate::health::Status;
use crate::msg::{CheckState, Heartbeat, NodeFacts};
use crate::{NodeId, TopicId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether the hub considers a node alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Up,
    Down,
}

/// `GET /api/v1/nodes` returns a list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: NodeId,
    pub status: NodeStatus,
    /// Why the node is in its status: `online`, `will`, `offline`, `heartbeat-timeout`, `restored`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<NodeFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// Milliseconds since the hub last heard from the node (`None`: not since the hub started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ago_ms: Option<u64>,
    pub services: usize,
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
