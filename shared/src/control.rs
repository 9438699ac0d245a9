//! The agent's local control socket: one JSON request line in, one JSON reply line
//! out. `rabble-agent check pass|warn|fail <id>` uses it to update TTL checks.

use crate::health::Status;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Sets a TTL check's status, with an optional note as its output.
    UpdateTtl {
        check: String,
        status: Status,
        #[serde(default)]
        note: String,
    },
    /// Asks the agent to re-read its service files (same as SIGHUP).
    Reload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub error: String,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { ok: true, error: String::new() }
    }
    pub fn err(e: impl Into<String>) -> Reply {
        Reply { ok: false, error: e.into() }
    }
}
