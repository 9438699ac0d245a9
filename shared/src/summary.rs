//! `rabble/hub/nodes/<node>`: one node at a glance, as the hub sees it — up or down, its
//! load, memory, root disk, temperature and uptime (from its last heartbeat, rounded),
//! Pi throttling, running allocations, and each service's health there. Retained, and
//! published again when it changes (at most each metrics interval): what Home
//! Assistant's sensors and any dashboard read with one subscription per node.

use crate::Status;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub v: u32,
    /// `up` or `down` (as the hub decided: a silent node is down after 4 s).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<f32>,
    /// The root filesystem's (`/`), or the first one the node reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_percent: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// A Pi's firmware says under-voltage, throttled or capped now (absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<bool>,
    /// Allocations running on the node.
    pub allocations: u32,
    /// Each service's health on this node (the worst of its instances' checks).
    pub services: BTreeMap<String, Status>,
}
