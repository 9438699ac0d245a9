//! Nomad's `parameterized` jobs: a job that is never placed itself, only dispatched
//! (`rabble job dispatch`), each dispatch a child batch job with its own meta and an
//! optional payload the agent writes into the task's `local/` directory.

use serde::{Deserialize, Serialize};

/// Nomad's limit on a dispatch payload (16 KiB): it travels inside the signed assignment.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// `parameterized { payload = "optional"  meta_required = [...]  meta_optional = [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameterized {
    pub payload: PayloadRule,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta_required: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta_optional: Vec<String>,
}

/// Whether a dispatch must, may or must not carry a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PayloadRule {
    #[default]
    Optional,
    Required,
    Forbidden,
}

impl PayloadRule {
    pub fn parse(s: &str) -> Option<PayloadRule> {
        Some(match s {
            "optional" => PayloadRule::Optional,
            "required" => PayloadRule::Required,
            "forbidden" => PayloadRule::Forbidden,
            _ => return None,
        })
    }
}

/// A task's `dispatch_payload { file = "input.json" }`: where under `local/` the payload
/// goes. In a dispatched child `data` holds the payload (base64); in the template it is
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchPayload {
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
}

/// `POST /api/v1/jobs/<id>/dispatch`: the dispatch's meta and payload (base64).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRequest {
    #[serde(default)]
    pub meta: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload: String,
}

/// Its answer: the child job, durable and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatched {
    pub id: String,
    pub index: u64,
}

/// A parameterized job's children by where they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchQueue {
    /// Waiting for room: nothing placed yet.
    pub queued: u32,
    /// Placed: pending or running.
    pub running: u32,
    pub complete: u32,
    pub failed: u32,
}
