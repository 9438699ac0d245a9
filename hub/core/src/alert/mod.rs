//! Alerts, pure: what is wrong now (`rules`: the built-in rules over a catalog, the
//! nodes' heartbeats and the scheduler's verdicts; `ops`: periodic jobs, deployments,
//! certificates, the hub cluster), how long it has been wrong
//! (`track`: pending until its `for` has passed, then firing, then resolved), and who is
//! told what when (`group`: Alertmanager's grouping, `group_wait` / `group_interval` /
//! `repeat_interval`, inhibition and silences), custom rules over `/metrics` (`expr`), and
//! the request each receiver gets (`payload`); what of it the catalog keeps (`book`:
//! the tracker's and dispatcher's state, silences). The hub's alert task feeds these with the
//! clock and sends what they decide; they read no clock and do no IO.

pub mod book;
pub mod expr;
pub mod group;
pub mod ops;
pub mod payload;
pub mod rules;
pub mod track;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An alert's identity and what it is about: `alertname`, `severity`, and the things it
/// names (`node`, `service`, `job`, `alloc`, `mount`, ...), as Alertmanager's labels.
pub type Labels = BTreeMap<String, String>;

/// One alert as the receivers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: Labels,
    /// `summary` and `description`, in words.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (ms since the epoch).
    pub starts_ms: u64,
    /// When it resolved; `None` while it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_ms: Option<u64>,
}

impl Alert {
    /// The alert's fingerprint: its labels, in order (the same alert on every hub).
    pub fn key(&self) -> String {
        key(&self.labels)
    }

    /// Alertmanager's short form of the identity: 16 hex digits, FNV-1a of the key (the
    /// same on every hub and run).
    pub fn fingerprint(&self) -> String {
        let h =
            self.key().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{h:016x}")
    }

    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    pub fn firing(&self) -> bool {
        self.ends_ms.is_none()
    }
}

/// The fingerprint of a label set: `k=v` pairs in order, comma-separated.
pub fn key(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests;
